"""Plain-ViT baseline of the built-in default: same width, depth, data and budget as
``mst_tiny_synthetic.py``, no token selection.

    python train.py models/plainvit_tiny_synthetic.py --cpu --exp-name default
"""
from isegm.engine.project_recipes import synthetic_recipe

MODEL_NAME = "plainvit_tiny_synthetic"
init_model, get_datasets, get_train_config = synthetic_recipe("plainvit_tiny_224", 0.0, 0.0).hooks()
