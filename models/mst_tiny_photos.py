"""Built-in default for real photographs: a tiny MST (width 96, depth 6, 3 selection blocks)
fine-tuned, as in the paper's recipe, from the tiny plain ViT trained on photo scenes
(``plainvit_tiny_photos.py``, ``TINY_PLAINVIT_PHOTOS`` in config.yml):

    python train.py models/mst_tiny_photos.py --cpu --exp-name default --save-last-every 100
"""
from isegm.engine.project_recipes import photo_finetune_recipe

MODEL_NAME = "mst_tiny_photos"
init_model, get_datasets, get_train_config = photo_finetune_recipe(
    "mst_tiny_224", 0.1, 0.1
).hooks()
