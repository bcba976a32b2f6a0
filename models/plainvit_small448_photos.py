"""Plain-ViT control of ``mst_small448_photos.py``: the same data, budget and schedule
(``photo_448_recipe``), no multi-scale tokens:

    python train.py models/plainvit_small448_photos.py --gpus 0 --amp --amp-dtype bf16 --workers 7 --time-limit 6
"""
from isegm.engine.project_recipes import photo_448_recipe

MODEL_NAME = "plainvit_small448_photos"
init_model, get_datasets, get_train_config = photo_448_recipe("plainvit_small_448", 0.0, 0.0).hooks()
