"""224 ablation, MST-6s (branch mst-224, interval 2): ViT-B from MAE on COCO+LVIS (30000 items per epoch, SPEC §5).

python dis_train.py models/adaptivevit_base224_cclvs_6s.py --gpus 0,1,2,3 --batch-size 32 --amp
"""

from isegm.engine.recipes import RECIPE_224, Recipe
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "cclvs_adaptivevit_base224_6s"
RECIPE = Recipe(
    arch="mst_224_6s_vit_base_224",
    img_size=224,
    init=("MAE_BASE", "mae"),
    augment=RECIPE_224,
    epoch_len=30000,
    train=TrainConfig(
        epochs=100, batch_size=32, lr=5e-6, milestones=(60, 80), checkpoint_interval=2
    ),
    loss=LossConfig(instance_weight=1.0, token_weight=1e-3, score_weight=1e-3, score_mode="mse"),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
