"""Third photo stage of the built-in default: the stage-2 MST (``mst_tiny_photos.py``,
``TINY_MST_PHOTOS`` in config.yml) trained 5 more epochs on photo scenes that draw large objects
more often (``BIG_OBJECT_SCALE_PROBS`` in isegm/engine/project_recipes.py):

    python train.py models/mst_tiny_photos_bigobjects.py --cpu --exp-name default --save-last-every 100
"""
from isegm.engine.project_recipes import photo_bigobject_recipe

MODEL_NAME = "mst_tiny_photos_bigobjects"
init_model, get_datasets, get_train_config = photo_bigobject_recipe(
    "mst_tiny_224", 0.1, 0.1, "TINY_MST_PHOTOS"
).hooks()
