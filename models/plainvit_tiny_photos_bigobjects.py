"""Plain-ViT control of the third photo stage: the stage-2 control (``plainvit_tiny_photos_ft.py``,
``TINY_PLAINVIT_PHOTOS_FT`` in config.yml) with exactly the data and budget of
``mst_tiny_photos_bigobjects.py``:

    python train.py models/plainvit_tiny_photos_bigobjects.py --cpu --exp-name default --save-last-every 100
"""
from isegm.engine.project_recipes import photo_bigobject_recipe

MODEL_NAME = "plainvit_tiny_photos_bigobjects"
init_model, get_datasets, get_train_config = photo_bigobject_recipe(
    "plainvit_tiny_224", 0.0, 0.0, "TINY_PLAINVIT_PHOTOS_FT"
).hooks()
