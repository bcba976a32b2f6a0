"""MST ViT-B at 1024 fine-tuned on HQSeg-44K (branch mst-1024-hqseg44k).

The original repository ships no 1024 script; this follows its 224 recipe at 1024 px and starts
from MAE ViT-B unless ``--weights`` gives an MST checkpoint to fine-tune.

    python dis_train.py models/mst1024_hqseg44k.py --gpus 0,1,2,3 --batch-size 8 --amp
"""

from isegm.data.datasets.hqseg44k import HQSeg44kDataset
from isegm.data.transforms import train_augmentator, val_augmentator
from isegm.engine.recipes import RECIPE_224, Recipe, reference_points_sampler
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "hqseg44k_mst1024"


def _datasets(cfg, crop):
    sampler = reference_points_sampler()
    train = HQSeg44kDataset(
        cfg.HQSeg44K_PATH,
        split="train",
        augmentator=train_augmentator(crop, **RECIPE_224),
        points_sampler=sampler,
        min_object_area=1000,
        epoch_len=30000,
        seed=cfg.seed,
    )
    val = HQSeg44kDataset(
        cfg.HQSeg44K_PATH,
        split="val",
        augmentator=val_augmentator(crop),
        points_sampler=sampler,
        min_object_area=1000,
        epoch_len=500,
        seed=cfg.seed,
    )
    return train, val


RECIPE = Recipe(
    arch="mst_1024_vit_base_1024",
    img_size=1024,
    init=("MAE_BASE", "mae"),
    augment=RECIPE_224,
    epoch_len=30000,
    datasets=_datasets,
    train=TrainConfig(epochs=60, batch_size=8, lr=5e-6, milestones=(40, 55), checkpoint_interval=2),
    loss=LossConfig(instance_weight=1.0, token_weight=1e-3, score_weight=1e-3, score_mode="mse"),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
