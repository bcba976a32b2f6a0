"""Built-in default: a tiny MST (ViT width 96, depth 6, 3 selection blocks) on procedural
multi-scale synthetic scenes. Needs no download; trains on a 2-core CPU.

As in the paper's recipe (MST fine-tuned from SimpleClick), it starts from the tiny plain ViT of
``plainvit_tiny_synthetic.py`` (``TINY_PLAINVIT`` in config.yml; the shared weights are loaded,
the selection blocks start at init) and trains 3 more epochs:

    python train.py models/mst_tiny_synthetic.py --cpu --exp-name default
"""
from isegm.engine.project_recipes import synthetic_finetune_recipe

MODEL_NAME = "mst_tiny_synthetic"
init_model, get_datasets, get_train_config = synthetic_finetune_recipe(
    "mst_tiny_224", 0.1, 0.1
).hooks()
