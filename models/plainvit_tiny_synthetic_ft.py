"""Plain-ViT control for the built-in default: the same 3 extra epochs from the same
``TINY_PLAINVIT`` start as ``mst_tiny_synthetic.py``, without token selection, so that the two
models have had exactly the same data and budget.

    python train.py models/plainvit_tiny_synthetic_ft.py --cpu --exp-name default
"""
from isegm.engine.project_recipes import synthetic_finetune_recipe

MODEL_NAME = "plainvit_tiny_synthetic_ft"
init_model, get_datasets, get_train_config = synthetic_finetune_recipe(
    "plainvit_tiny_224", 0.0, 0.0
).hooks()
