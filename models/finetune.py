"""Fine-tune any loadable checkpoint on your own images (README "Train on your own images"):

    python train.py models/finetune.py --cpu --weights weights/mst_tiny_photos_bigobjects.pth \\
        --train-data ImagesDir:my_images --val-fraction 0.1 --time-limit 30

``--train-data`` / ``--val-data``: ``ImagesDir:<folder>`` (``images/`` + ``masks/``) or
``COCO:<annotations.json>`` (``--images DIR``, ``--categories a,b``), repeatable. The
architecture and the starting weights come from ``--weights`` (default: the built-in default
model; the project's checkpoints and the published MST / SimpleClick files), a resumed run from
its own checkpoint. Defaults sized for a few hundred images: AdamW 1e-4 with layer-wise decay
0.75 (the head learns fastest, the early blocks least), x0.1 after 80 % of the epochs
(10 by default), batch 8, the
photo recipes' click simulator and colour / scale augmentation at the model's own size, four
in five items first cut around one object as the evaluation's ZoomIn shows it. After
every epoch, NoC@85/90 on the validation images by the evaluation's protocol; ``best.pth``
keeps the lowest NoC@90.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from isegm.data.base import DatasetError
from isegm.data.datasets.user_data import UserDataOptions, open_user_sets
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.transforms import train_augmentator
from isegm.engine.recipes import RECIPE_224, RECIPE_448
from isegm.engine.trainer import LossConfig, TrainConfig
from isegm.engine.validation import NocValidation
from isegm.inference.utils import DEFAULT_MODEL_FILE
from isegm.model.checkpoint import load_model_checkpoint

MODEL_NAME = "finetune"
#: this script reads --train-data / --val-data, and builds its model from --weights itself
USER_DATA = True
LOADS_WEIGHTS = True

BATCH_SIZE = 8
#: epochs, and the share of them before the learning rate drops x0.1 (--epochs keeps it)
EPOCHS, DROP_AT = 10, 0.8
LR, LAYER_DECAY, WEIGHT_DECAY = 1e-4, 0.75, 0.05
#: objects below this many pixels (in the file) are left out
MIN_AREA = 100
#: validation objects per epoch, at most (NoC costs up to 20 clicks each)
VAL_OBJECTS = 100
#: a training image is first scaled down to this many crop sides (longest side), so a random
#: crop still holds a good part of a photo's objects
MAX_SIDE_PER_CROP = 2.0

#: share of the training items cut around one object first, as the evaluation's ZoomIn shows
#: objects to the network after the first click (small objects are seen magnified there)
ZOOM_PROB = 0.8

_MODELS: dict[str, Any] = {}


def _source(cfg: Any) -> str:
    """The file the model comes from: the resumed checkpoint, --weights, or the default."""
    for path in (getattr(cfg, "resume_checkpoint", None), getattr(cfg, "weights", None)):
        if path:
            return str(path)
    return str(Path(getattr(cfg, "INTERACTIVE_MODELS_PATH", "weights")) / DEFAULT_MODEL_FILE)


def _model(cfg: Any):
    """The checkpoint's model (read once per file and process), weights trainable."""
    path = _source(cfg)
    if path not in _MODELS:
        _MODELS[path] = load_model_checkpoint(path, "cpu", eval_mode=False)
    return _MODELS[path]


def init_model(cfg: Any):
    model = _model(cfg)
    if getattr(cfg, "img_size", None) and cfg.img_size != model.cfg.img_size:
        raise DatasetError(f"--img-size {cfg.img_size}: the model of {_source(cfg)} is built for "
                           f"{model.cfg.img_size} (fine-tuning keeps the checkpoint's size)")
    return model


def get_datasets(cfg: Any):
    if not getattr(cfg, "train_data", None):
        raise DatasetError("models/finetune.py needs --train-data ImagesDir:<folder> or "
                           "COCO:<annotations.json>")
    categories = tuple(c.strip() for c in (cfg.categories or "").split(",") if c.strip())
    options = UserDataOptions(images=cfg.images, categories=categories or None,
                              min_area=MIN_AREA if cfg.min_area is None else cfg.min_area)
    train, val = open_user_sets(cfg.train_data, cfg.val_data, cfg.val_fraction, options,
                                seed=cfg.seed)
    crop = _model(cfg).cfg.img_size
    batch = cfg.batch_size if cfg.batch_size > 0 else BATCH_SIZE
    train.augmentator = train_augmentator(crop, **(RECIPE_448 if crop >= 448 else RECIPE_224))
    train.points_sampler = MultiPointSampler(12, prob_gamma=0.8)
    train.min_object_area = 8  # after the augmentation
    train.max_side = round(MAX_SIDE_PER_CROP * crop)
    train.zoom_prob, train.zoom_size = ZOOM_PROB, crop
    train.seed = cfg.seed
    train.epoch_len = batch if len(train.dataset_samples) < batch else -1  # a handful: redraw
    objects = VAL_OBJECTS if cfg.val_objects is None else cfg.val_objects
    return train, (NocValidation(val, max_objects=objects) if val is not None else None)


def get_train_config(cfg: Any):
    mst = _model(cfg).cfg.arch != "plainvit"
    epochs = cfg.epochs if getattr(cfg, "epochs", -1) > 0 else EPOCHS
    train = TrainConfig(epochs=epochs, batch_size=BATCH_SIZE, lr=LR, weight_decay=WEIGHT_DECAY,
                        layer_decay=LAYER_DECAY, milestones=(max(1, round(DROP_AT * epochs)),),
                        checkpoint_interval=0,
                        image_dump_interval=100)
    # the token / score losses of the project's MST recipes; a plain ViT has no token selection
    loss = LossConfig(instance_weight=1.0, token_weight=0.1 if mst else 0.0,
                      score_weight=0.1 if mst else 0.0)
    return train, loss
