"""SimpleClick plain ViT-B 448 baseline: MAE ViT-B on COCO+LVIS, Adam 5e-5, steps at 50/55.

python dis_train.py models/simpleclick_base448_cclvs.py --gpus 0,1,2,3 --batch-size 32 --amp
"""

from isegm.engine.recipes import RECIPE_224, Recipe
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "cclvs_simpleclick_base448"
RECIPE = Recipe(
    arch="simpleclick_vit_base_448",
    img_size=448,
    init=("MAE_BASE", "mae"),
    augment=RECIPE_224,
    epoch_len=30000,
    train=TrainConfig(
        epochs=55,
        batch_size=32,
        lr=5e-5,
        weight_decay=0.0,
        milestones=(50, 55),
        checkpoint_interval=1,
    ),
    loss=LossConfig(instance_weight=1.0),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
