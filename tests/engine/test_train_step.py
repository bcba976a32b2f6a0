"""One training step in process: a step whose gradients are not finite is refused (issue 23)."""

from __future__ import annotations

import logging

import torch

from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.engine.trainer import LossConfig, TrainConfig, Trainer
from isegm.model import build_model


def _trainer(tmp_path, **train) -> Trainer:
    torch.manual_seed(0)
    model = build_model("plainvit_tiny_224", img_size=64, depth=2, head_dropout=0.0)
    data = SyntheticMultiScaleDataset(num_samples=8, image_size=64, seed=3, scale="large",
                                      points_sampler=MultiPointSampler(4), min_object_area=8)
    cfg = TrainConfig(batch_size=2, lr=1e-3, workers=0, image_dump_interval=0,
                      max_num_next_clicks=0, **train)
    return Trainer(model, cfg, LossConfig(), data, None, tmp_path, torch.device("cpu"))


def _batch(trainer: Trainer) -> dict:
    trainer.trainset.set_epoch(0)
    return next(iter(trainer.loader))


def test_nonfinite_gradient_refuses_the_step_and_names_the_parameter(tmp_path, caplog):
    trainer = _trainer(tmp_path)
    batch = _batch(trainer)
    target = dict(trainer.model.named_parameters())["backbone.blocks.1.mlp.fc1.weight"]
    hook = target.register_hook(lambda g: g * float("nan"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with caplog.at_level(logging.WARNING, logger="isegm.engine.train_step"):
        assert trainer.train_step(batch) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "non-finite gradient in backbone.blocks.1.mlp.fc1.weight" in lines[0]
    assert "skipped" in lines[0]
    for n, p in trainer.model.named_parameters():  # nothing moved, no optimizer state
        assert torch.equal(p.detach(), before[n]), n
    assert not trainer.optimizer.state
    assert trainer.nonfinite_streak == 1
    hook.remove()
    caplog.clear()
    assert trainer.train_step(batch) is not None  # finite again: the step is taken
    assert trainer.nonfinite_streak == 0 and not caplog.records
    assert not torch.equal(target.detach(), before["backbone.blocks.1.mlp.fc1.weight"])


def test_finite_gradients_pass_the_check(tmp_path):
    trainer = _trainer(tmp_path)
    assert trainer._first_nonfinite_grad() is None  # no gradients yet
    for p in trainer.model.parameters():
        p.grad = torch.ones_like(p)
    assert trainer._first_nonfinite_grad() is None
    names = [n for n, _ in trainer.model.named_parameters()]
    dict(trainer.model.named_parameters())[names[7]].grad[..., 0] = float("inf")
    dict(trainer.model.named_parameters())[names[3]].grad.view(-1)[-1] = float("nan")
    assert trainer._first_nonfinite_grad() == names[3]
