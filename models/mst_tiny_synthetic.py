"""Built-in default: a tiny MST (ViT width 96, depth 6, 3 selection blocks) trained from scratch
on procedural multi-scale synthetic scenes. Needs no download; trains on a 2-core CPU.

    python train.py models/mst_tiny_synthetic.py --cpu --exp-name default
"""

from isegm.engine.recipes import Recipe, synthetic_datasets
from isegm.engine.trainer import LossConfig, TrainConfig

MODEL_NAME = "mst_tiny_synthetic"
RECIPE = Recipe(
    arch="mst_tiny_224",
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
    loss=LossConfig(instance_weight=1.0, token_weight=0.1, score_weight=0.1),
)
init_model, get_datasets, get_train_config = RECIPE.hooks()
