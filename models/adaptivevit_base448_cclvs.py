"""MST ViT-B 448 on COCO+LVIS, initialised from SimpleClick ViT-B (the seed's recipe, SPEC §5).

Architecture ``main`` (the published ``mst-3s-slim-448-base.pth``). The seed's command line:

    python dis_train.py models/adaptivevit_base448_cclvs.py --batch-size 60 \
        --model_base_name cclvs_adaptivevit_base448 --exp-name 3s_mst --gpus 0,1,2,3,4,5 \
        --dport 29500 --workers 2 --img_size 448 --amp
"""

from isegm.engine.recipes import RECIPE_448, Recipe
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "cclvs_adaptivevit_base448"
RECIPE = Recipe(
    arch="mst_main_vit_base_448",
    img_size=448,
    init=("VIT_BASE", "simpleclick"),
    augment=RECIPE_448,
    epoch_len=-1,
    train=TrainConfig(
        epochs=100,
        batch_size=32,
        lr=5e-6,
        weight_decay=0.01,
        milestones=(60, 80),
        checkpoint_interval=2,
        save_last_every_steps=500,
    ),
    loss=LossConfig(instance_weight=1.0, token_weight=1.0, score_weight=1.0, score_mode="focal"),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
