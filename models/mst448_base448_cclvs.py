"""MST ViT-B 448 with the ``mst-448`` architecture (+MST+CL), COCO+LVIS from SimpleClick ViT-B.

python dis_train.py models/mst448_base448_cclvs.py --gpus 0,1,2,3 --batch-size 40 --amp
"""

from isegm.engine.recipes import RECIPE_448, Recipe
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "cclvs_mst448_base448"
RECIPE = Recipe(
    arch="mst_448_vit_base_448",
    img_size=448,
    init=("VIT_BASE", "simpleclick"),
    augment=RECIPE_448,
    epoch_len=-1,
    train=TrainConfig(
        epochs=100,
        batch_size=32,
        lr=5e-6,
        milestones=(60, 80),
        checkpoint_interval=2,
        save_last_every_steps=500,
    ),
    loss=LossConfig(instance_weight=1.0, token_weight=1.0, score_weight=1.0, score_mode="focal"),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
