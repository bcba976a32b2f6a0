"""A deterministic tiny experiment for the training tests: 64-px synthetic scenes, no dropout,
instance loss only (so a 2-process run equals a 1-process run with the same global batch).
``TINY_ARCH=plainvit`` uses the plain ViT: no discrete top-k whose near-ties float noise could flip.
"""

import os

from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.engine.trainer import LossConfig, TrainConfig
from isegm.model import build_model
from isegm.model.build import selection_preset

MODEL_NAME = "tiny_test"


def init_model(cfg):
    if os.environ.get("TINY_ARCH") == "plainvit":
        return build_model("plainvit_tiny_224", img_size=64, depth=4, head_dropout=0.0)
    sel = selection_preset("main", score_blocks=(1, 3), score_sr=1, score_dropout=0.0)
    return build_model("mst_tiny_224", img_size=64, depth=4, head_dropout=0.0, selection=sel)


def get_datasets(cfg):
    train = SyntheticMultiScaleDataset(
        num_samples=64,
        image_size=64,
        seed=3,
        scale="large",
        objects_per_image=(1, 2),
        points_sampler=MultiPointSampler(4),
        min_object_area=8,
    )
    return train, None


def get_train_config(cfg):
    return (
        TrainConfig(
            epochs=2,
            batch_size=4,
            lr=1e-3,
            milestones=(1,),
            max_steps_per_epoch=4,
            checkpoint_interval=0,
            image_dump_interval=0,
            save_last_every_steps=1,
            click_reset_prob=0.2,
            max_num_next_clicks=2,
        ),
        LossConfig(instance_weight=1.0),
    )
