"""The start of the photo default: the tiny plain ViT (width 96, depth 6) of
``plainvit_tiny_synthetic.py`` (``TINY_PLAINVIT``) trained further on scenes composed from real
photographs (``PHOTOS_PATH``; collect them first with ``python -m isegm.data.photos collect``):

    python train.py models/plainvit_tiny_photos.py --cpu --exp-name default --save-last-every 100
"""
from isegm.engine.project_recipes import photo_recipe

MODEL_NAME = "plainvit_tiny_photos"
init_model, get_datasets, get_train_config = photo_recipe(
    "plainvit_tiny_224", 0.0, 0.0, init=("TINY_PLAINVIT", "simpleclick"), epochs=10,
    milestones=(8,)
).hooks()
