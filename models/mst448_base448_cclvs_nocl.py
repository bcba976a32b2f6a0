"""The "+MST" ablation: the ``mst-448`` architecture trained without the contrastive token loss."""

import dataclasses

from isegm.engine.recipes import RECIPE_448, Recipe
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "cclvs_mst448_base448_nocl"
RECIPE = Recipe(
    arch="mst_448_vit_base_448",
    img_size=448,
    init=("VIT_BASE", "simpleclick"),
    augment=RECIPE_448,
    epoch_len=-1,
    train=TrainConfig(
        epochs=100, batch_size=32, lr=5e-6, milestones=(60, 80), checkpoint_interval=2
    ),
    loss=dataclasses.replace(LossConfig(score_weight=1.0), token_weight=0.0),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
