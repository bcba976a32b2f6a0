"""The original's training settings (issue 23): the seed's scripts default to them, the
project's recipes keep their own; each setting behaves as the original code does."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from isegm.data.points_sampler import MultiPointSampler
from isegm.data.sample import DSample
from isegm.data.transforms import UniformRandomResize
from isegm.engine.launch import load_script
from isegm.engine.optim import build_optimizer
from isegm.engine.recipes import REFERENCE_LOSS, REFERENCE_TRAIN
from isegm.engine.trainer import LossConfig, TrainConfig, Trainer
from isegm.inference.clicker import inner_half_click, next_clicks_batch
from isegm.model import build_model
from isegm.model.losses import ScoreLoss

MODELS = Path(__file__).resolve().parents[2] / "models"
SEED_SCRIPTS = [
    "adaptivevit_base448_cclvs", "mst448_base448_cclvs", "mst448_base448_cclvs_nocl",
    "adaptivevit_base224_cclvs_3s", "adaptivevit_base224_cclvs_6s", "adaptivevit_base224_cclvs_at",
    "adaptivevit_base224_cclvs_it", "adaptivevit_base224_cclvs_upconv",
    "adaptivevit_large448_cclvs", "simpleclick_base448_cclvs",
]
PROJECT_SCRIPTS = sorted(
    p.stem for p in MODELS.glob("*.py")
    if p.stem not in SEED_SCRIPTS and p.stem != "mst1024_hqseg44k"
)


def _configs(name: str, settings: str | None = None):
    return load_script(str(MODELS / f"{name}.py")).get_train_config(
        SimpleNamespace(train_settings=settings))


@pytest.mark.parametrize("name", SEED_SCRIPTS)
def test_seed_scripts_train_as_the_original_by_default(name):
    train, loss = _configs(name)
    for key, value in REFERENCE_TRAIN.items():
        if not (name.startswith("simpleclick") and key == "lr_epoch_offset"):
            assert getattr(train, key) == value, key
    assert loss.token_reference_quirks and loss.score_ignore == "reference"
    if name.startswith("simpleclick"):  # SimpleClick's train.py: num_epochs 55, start epoch 0
        assert (train.epochs, train.lr_epoch_offset, train.click_reset_prob) == (55, 0, 0.0)
        assert train.optimizer == "adam"  # SimpleClick's scripts: optimizer='adam'
    else:  # dist_train.py --epochs 500 --start-epoch 1
        assert train.epochs == 499 and train.lr_epoch_offset == 1
        assert train.optimizer == "adamw"
    project_train, project_loss = _configs(name, "project")
    assert project_train.weight_decay_rule == "project" and not project_loss.token_reference_quirks
    assert project_train.train_clicks == "deepest" and project_train.lr_epoch_offset == 0
    assert project_train.optimizer == "adamw"


@pytest.mark.parametrize("name", PROJECT_SCRIPTS)
def test_project_recipes_keep_their_settings(name):
    train, loss = _configs(name)
    defaults_t, defaults_l = TrainConfig(), LossConfig()
    for key in REFERENCE_TRAIN:
        assert getattr(train, key) == getattr(defaults_t, key), key
    for key in REFERENCE_LOSS:
        assert getattr(loss, key) == getattr(defaults_l, key), key


def test_reference_optimizer_groups():
    model = build_model("mst_tiny_224")
    names = [n for n, _ in model.named_parameters()]
    (group,) = build_optimizer(model, 1e-3, 0.01, rule="reference").param_groups
    assert group["weight_decay"] == 0.01 and len(group["params"]) == len(names)
    opt = build_optimizer(model, 1e-3, 0.02, layer_decay=0.75, rule="reference")
    members = {id(p): g for g in opt.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert not any(id(p) in members for n, p in params.items()
                   if n.startswith("patch_embed_coords"))  # never trained, as the original
    assert len(members) == sum(not n.startswith("patch_embed_coords") for n in names)
    depth = len(model.backbone.blocks)
    for n, p in params.items():
        if n.startswith(("neck.", "head.")):  # one group each, full lr, decayed even when 1-D
            g = members[id(p)]
            assert len(g["params"]) == 1 and g["weight_decay"] == 0.02 and g["lr"] == 1e-3
    blk = members[id(params["backbone.blocks.0.mlp.fc1.weight"])]
    assert blk["weight_decay"] == 0.02 and math.isclose(blk["lr"], 1e-3 * 0.75 ** depth)
    assert members[id(params["backbone.blocks.0.mlp.fc1.bias"])]["weight_decay"] == 0.0
    assert members[id(params["backbone.pos_embed"])]["weight_decay"] == 0.0
    # the project's rule stays as it was: 1-D parameters undecayed, the click embedding trained
    project = build_optimizer(model, 1e-3, 0.01, layer_decay=0.75)
    pmembers = {id(p): g for g in project.param_groups for p in g["params"]}
    assert len(pmembers) == len(names)
    head_bias = next(p for n, p in params.items() if n.startswith("head.") and p.ndim == 1)
    assert pmembers[id(head_bias)]["weight_decay"] == 0


def test_adam_weight_decay_is_l2_and_names_are_checked():
    model = build_model("mst_tiny_224")
    opt = build_optimizer(model, 1e-3, 0.02, layer_decay=0.75, rule="reference", name="adam")
    assert type(opt) is torch.optim.Adam
    assert any(g["weight_decay"] == 0.02 for g in opt.param_groups)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        build_optimizer(model, 1e-3, name="sgd")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lion")


def test_lr_schedule_one_epoch_ahead(tmp_path):
    from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset

    data = SyntheticMultiScaleDataset(num_samples=4, image_size=64, seed=3,
                                      points_sampler=MultiPointSampler(2), min_object_area=8)
    model = build_model("plainvit_tiny_224", img_size=64, depth=1)
    cfg = TrainConfig(batch_size=2, lr=1.0, milestones=(60, 80), workers=0, lr_epoch_offset=1)
    trainer = Trainer(model, cfg, LossConfig(), data, None, tmp_path, torch.device("cpu"))
    assert [trainer._set_lr(e) for e in (0, 58, 59, 78, 79)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01])
    trainer.cfg = dataclasses.replace(cfg, lr_epoch_offset=0)
    assert trainer._set_lr(59) == 1.0 and trainer._set_lr(60) == pytest.approx(0.1)


def test_score_loss_reference_ignore_cells():
    gt = torch.zeros(1, 1, 16, 16)
    gt[0, 0, :8, :8] = 1
    gt[0, 0, 8:, :8] = -1  # token 2 is an ignore cell
    scores = torch.tensor([[0.9, 0.2, 0.4, 0.5]])
    a = 0.25
    terms = [-a * 0.1**2 * math.log(0.9), -(1 - a) * 0.2**2 * math.log(0.8),
             -(1 - a) * 0.4**2 * math.log(0.6), -(1 - a) * 0.5**2 * math.log(0.5)]
    rec = [{"pos_scores_s": scores}]
    project = ScoreLoss(patches={"s": 8})(rec, gt)
    assert project.item() == pytest.approx(sum(terms) / 4)  # ignore = background
    ref = ScoreLoss(patches={"s": 8}, ignore="reference")(rec, gt)
    assert ref.item() == pytest.approx((sum(terms) - terms[2]) / 4)  # 0 loss, still counted
    mse = ScoreLoss("mse", patches={"s": 8}, ignore="reference")(rec, gt)
    assert mse.item() == pytest.approx((0.01 + 0.04 + 1.96 + 0.25) / 4)  # target -1


def test_inner_half_training_clicks_are_random_inside_the_inner_half():
    fn = np.zeros((64, 64), bool)
    fn[10:50, 10:50] = True  # the larger error: a positive click
    fp = np.zeros((64, 64), bool)
    fp[55:60, 55:60] = True
    rng = np.random.default_rng(0)
    clicks = [inner_half_click(fn, fp, rng) for _ in range(300)]
    assert all(c[0] for c in clicks)
    ys, xs = np.array([c[1] for c in clicks]), np.array([c[2] for c in clicks])
    assert len(set(zip(ys, xs))) > 100  # not the one deepest pixel
    assert ys.min() >= 20 and ys.max() <= 39 and xs.min() >= 20 and xs.max() <= 39
    assert inner_half_click(np.zeros_like(fn), np.zeros_like(fp), rng) is None
    # through the batch API: ignore pixels count as background (false positives), as the original
    gt = torch.full((1, 1, 32, 32), -1.0)
    pred = torch.ones(1, 1, 32, 32)
    points = torch.full((1, 4, 3), -1.0)
    out = next_clicks_batch(pred, gt, points, 1, mode="inner-half", rng=0, ignore_label=None)
    assert out[0, 2, 2] == 1 and out[0, 0, 0] == -1  # a negative click on the ignore region
    same = next_clicks_batch(pred, gt, points, 1)
    assert torch.equal(same, points)  # the project's rule: no click on ignore pixels


def test_sampler_clicks_on_ignore_pixels_only_when_asked():
    labels = np.zeros((64, 64), np.int32)
    labels[16:48, 16:48] = 1
    labels[12:52, 12:16] = 2  # ignore band beside the object
    sample = DSample(np.zeros((64, 64, 3), np.uint8), labels, objects_ids=[1], ignore_ids=[2])
    hits = {}
    for on_ignore in (False, True):
        sampler = MultiPointSampler(8, positive_erode_prob=0.0, clicks_on_ignore=on_ignore)
        n = 0
        for seed in range(60):
            points, mask = sampler.sample(sample, np.random.default_rng(seed))
            assert (mask == -1).any()
            for y, x, _ in points[points[:, 0] >= 0]:
                n += mask[0, int(y), int(x)] == -1
        hits[on_ignore] = n
    assert hits[False] == 0 and hits[True] > 0


def test_bilinear_truncated_mask_resize():
    mask = np.zeros((20, 20), np.int32)
    mask[5:15, 5:15] = 1
    near = UniformRandomResize((1.5, 1.5)).apply_to_mask(mask, 30, 30)
    trunc = UniformRandomResize((1.5, 1.5), mask_mode="bilinear-trunc").apply_to_mask(mask, 30, 30)
    assert trunc.dtype == mask.dtype and set(np.unique(trunc)) <= {0, 1}
    assert 0 < trunc.sum() < near.sum()  # truncation erodes the object's border
    with pytest.raises(ValueError, match="mask_mode"):
        UniformRandomResize(mask_mode="cubic")
