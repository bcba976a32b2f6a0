"""A larger default for one short GPU run (issue 10, item 4): the small MST at 448 (width 192,
depth 8; ``mst_small_448``) trained from scratch on photo scenes at 448 with the big-object
mix, bf16 autocast. Run by ``benchmarks/gpu_train_photos448.sh`` beside its plain-ViT control
``plainvit_small448_photos.py``; by hand:

    python train.py models/mst_small448_photos.py --gpus 0 --amp --amp-dtype bf16 --workers 7 --time-limit 6
"""
from isegm.engine.project_recipes import photo_448_recipe

MODEL_NAME = "mst_small448_photos"
init_model, get_datasets, get_train_config = photo_448_recipe("mst_small_448", 0.1, 0.1).hooks()
