"""Plain-ViT control of the photo default: the same epochs from the same
``TINY_PLAINVIT_PHOTOS`` start as ``mst_tiny_photos.py``, without token selection, so the two
models have had exactly the same data and budget:

    python train.py models/plainvit_tiny_photos_ft.py --cpu --exp-name default --save-last-every 100
"""
from isegm.engine.project_recipes import photo_finetune_recipe

MODEL_NAME = "plainvit_tiny_photos_ft"
init_model, get_datasets, get_train_config = photo_finetune_recipe(
    "plainvit_tiny_224", 0.0, 0.0
).hooks()
