"""224 ablation, UpConv ablation: 8-px tokens from a transposed conv: ViT-B from MAE on COCO+LVIS (30000 items per epoch, SPEC §5).

python dis_train.py models/adaptivevit_base224_cclvs_upconv.py --gpus 0,1,2,3 --batch-size 32 --amp
"""
from isegm.engine.recipes import mae_224_recipe

MODEL_NAME = "cclvs_adaptivevit_base224_upconv"
init_model, get_datasets, get_train_config = mae_224_recipe("mst_upconv_vit_base_224").hooks()
