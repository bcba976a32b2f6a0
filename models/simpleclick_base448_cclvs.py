"""SimpleClick plain ViT-B 448 baseline: MAE ViT-B on COCO+LVIS, Adam 5e-5, steps at 50/55.

The original SimpleClick trains in fp32 (no ``--amp``), 55 epochs from ``--start-epoch 0``,
with random inner-half training clicks, no single-click restarts and Adam (its weight decay
0.02 under ``--layerwise-decay`` acts as L2 on the gradient) (``--train-settings reference``,
the default here):

python dis_train.py models/simpleclick_base448_cclvs.py --gpus 0,1,2,3 --batch-size 32
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
    settings="reference",
    reference_train={"epochs": 55, "lr_epoch_offset": 0, "click_reset_prob": 0.0,
                     "optimizer": "adam"},
    mask_resize="nearest",
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
