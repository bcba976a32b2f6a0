"""Plain-ViT baseline of the built-in default (same width, depth and budget, no token selection) trained from scratch
on procedural multi-scale synthetic scenes. Needs no download; trains on a 2-core CPU.

    python train.py models/plainvit_tiny_synthetic.py --cpu --exp-name default
"""

from isegm.engine.recipes import Recipe, synthetic_datasets
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "plainvit_tiny_synthetic"
RECIPE = Recipe(
    arch="plainvit_tiny_224",
    img_size=224,
    init=None,
    augment={},
    epoch_len=-1,
    datasets=synthetic_datasets,
    train=TrainConfig(
        epochs=6,
        batch_size=12,
        lr=5e-4,
        weight_decay=0.05,
        milestones=(4, 5),
        checkpoint_interval=2,
        image_dump_interval=100,
        max_steps_per_epoch=150,
    ),
    loss=LossConfig(instance_weight=1.0, token_weight=0.0, score_weight=0.0),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
