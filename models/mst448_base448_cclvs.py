"""MST ViT-B 448 with the ``mst-448`` architecture (+MST+CL), COCO+LVIS from SimpleClick ViT-B.

    python dis_train.py models/mst448_base448_cclvs.py --gpus 0,1,2,3 --batch-size 40 --amp
"""
from isegm.engine.recipes import cclvs_448_recipe

MODEL_NAME = "cclvs_mst448_base448"
init_model, get_datasets, get_train_config = cclvs_448_recipe("mst_448_vit_base_448").hooks()
