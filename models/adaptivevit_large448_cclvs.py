"""MST ViT-L (branch mst-224-large; its script trains at 448 by default), COCO+LVIS from
SimpleClick ViT-L.

    python dis_train.py models/adaptivevit_large448_cclvs.py --gpus 0,1,2,3,4,5,6,7 --batch-size 32 --amp
"""

from isegm.engine.recipes import RECIPE_224, Recipe
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "cclvs_adaptivevit_large448"
RECIPE = Recipe(
    arch="mst_large_vit_large_448",
    img_size=448,
    init=("VIT_LARGE", "simpleclick"),
    augment=RECIPE_224,
    epoch_len=30000,
    settings="reference",
    train=TrainConfig(
        epochs=100, batch_size=32, lr=5e-6, milestones=(60, 80), checkpoint_interval=1
    ),
    loss=LossConfig(instance_weight=1.0, token_weight=1.0, score_weight=0.0),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
