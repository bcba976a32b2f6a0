"""Built-in default: a tiny MST (ViT width 96, depth 6, 3 selection blocks) trained from scratch
on procedural multi-scale synthetic scenes. Needs no download; trains on a 2-core CPU.

    python train.py models/mst_tiny_synthetic.py --cpu --exp-name default
"""
from isegm.engine.recipes import synthetic_recipe

MODEL_NAME = "mst_tiny_synthetic"
init_model, get_datasets, get_train_config = synthetic_recipe("mst_tiny_224", 0.1, 0.1).hooks()
