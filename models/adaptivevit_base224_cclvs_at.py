"""224 ablation, AT ablation: base tokens attend to all 8-px tokens: ViT-B from MAE on COCO+LVIS (30000 items per epoch, SPEC §5).

python dis_train.py models/adaptivevit_base224_cclvs_at.py --gpus 0,1,2,3 --batch-size 32 --amp
"""
from isegm.engine.recipes import mae_224_recipe

MODEL_NAME = "cclvs_adaptivevit_base224_at"
init_model, get_datasets, get_train_config = mae_224_recipe("mst_at_vit_base_224").hooks()
