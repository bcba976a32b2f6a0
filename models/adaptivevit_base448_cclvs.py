"""MST ViT-B 448 on COCO+LVIS, initialised from SimpleClick ViT-B (the seed's recipe, SPEC §5).

Architecture ``main`` (the published ``mst-3s-slim-448-base.pth``). The seed's command line:

    python dis_train.py models/adaptivevit_base448_cclvs.py --batch-size 60 \
        --model_base_name cclvs_adaptivevit_base448 --exp-name 3s_mst --gpus 0,1,2,3,4,5 \
        --dport 29500 --workers 2 --img_size 448 --amp
"""
from isegm.engine.recipes import cclvs_448_recipe

MODEL_NAME = "cclvs_adaptivevit_base448"
init_model, get_datasets, get_train_config = cclvs_448_recipe("mst_main_vit_base_448").hooks()
