"""Built-in default: a tiny MST (ViT width 96, depth 6, 3 selection blocks) trained from scratch
on the procedural multi-scale synthetic scenes. Needs no download; trains on a 2-core CPU.

    python train.py models/mst_tiny_synthetic.py --cpu --exp-name default
"""
from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.transforms import train_augmentator, val_augmentator
from isegm.engine.trainer import LossConfig, TrainConfig
from isegm.model import build_model

MODEL_NAME = "mst_tiny_synthetic"
ARCH = "mst_tiny_224"


def init_model(cfg):
    return build_model(ARCH, img_size=cfg.img_size or 224)


def get_datasets(cfg):
    crop = cfg.img_size or 224
    sampler = MultiPointSampler(12, prob_gamma=0.8, merge_objects_prob=0.0)
    common = dict(image_size=crop, points_sampler=sampler, min_object_area=8)
    train = SyntheticMultiScaleDataset(num_samples=20000, seed=cfg.seed, keep_background_prob=0.0,
                                       augmentator=train_augmentator(crop, scale_range=(0.8, 1.25)),
                                       **common)
    val = SyntheticMultiScaleDataset(num_samples=64, seed=cfg.seed + 1000,
                                     augmentator=val_augmentator(crop), **common)
    return train, val


def get_train_config(cfg):
    train = TrainConfig(epochs=12, batch_size=16, lr=5e-4, weight_decay=0.05, milestones=(9, 11),
                        checkpoint_interval=4, image_dump_interval=200, max_steps_per_epoch=250,
                        max_num_next_clicks=3, click_reset_prob=0.01)
    loss = LossConfig(instance_weight=1.0, token_weight=0.1, score_weight=0.1)
    return train, loss
