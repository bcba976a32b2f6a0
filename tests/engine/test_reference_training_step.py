"""One training step of each seed experiment script equals the ORIGINAL code's step (issue 23).

The fixtures in ``tests/fixtures/reference_training`` hold one float64 training step of the
original code (hahamyt/mst ``main`` and ``mst-448``, SimpleClick v1.0) on the small parity
models, on a fixed batch: parity images, previous masks and clicks, GrabCut ground truth with
its ignore band (regenerate with ``python benchmarks/make_training_fixtures.py``). Here the
project's ``Trainer.train_step`` runs the same step with the script's default
``--train-settings reference`` (its loss configuration, optimizer groups and weight decay) and
must give the same loss terms (1e-9 relative), gradients (1e-9 of each parameter's largest
gradient, all finite), optimizer settings per parameter, and weight update (1e-8 of the lr).

The click simulation is the random part of a step (number of extra clicks, their positions);
it is bypassed by giving ``simulate_clicks`` the fixture's clicks and previous masks, as the
original step was given them. Dropout layers are off in both.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from isegm.engine.launch import load_script
from isegm.engine.trainer import Trainer
from isegm.model.checkpoint import load_model_checkpoint

pytestmark = pytest.mark.parity
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "reference_training"
#: small parity model -> the seed experiment script of that architecture
SCRIPTS = {
    "main": "adaptivevit_base448_cclvs",
    "mst-448": "mst448_base448_cclvs",
    "simpleclick": "simpleclick_base448_cclvs",
}
TOL = 1e-9
#: the weight update, relative to the lr: Adam's first step is lr·g/(|g| + eps), whose
#: sensitivity to g is up to 1/eps = 1e8, so a gradient entry near eps that differs in its
#: last bits (summation order) moves the update by ~1e-10 of the lr (measured: <= 4.2e-10)
UPDATE_TOL = 1e-8


@pytest.fixture
def deterministic():
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(was)


def _reference(branch: str) -> dict:
    return json.loads((FIXTURES / f"{branch}.json").read_text())


def _batch():
    data = np.load(FIXTURES / "inputs.npz")
    image = torch.from_numpy(data["image_u8"]).double() / 255
    return {
        "images": image[:, :3],
        "prev": image[:, 3:],
        "points": torch.from_numpy(data["points"]).double(),
        "instances": torch.from_numpy(data["gt"]).double(),
    }


def _trainer(branch: str, parity_dir: Path, tmp_path: Path, **train_overrides) -> Trainer:
    """The seed script's Trainer (default ``--train-settings``) on the small float64 model."""
    script = load_script(str(REPO / "models" / f"{SCRIPTS[branch]}.py"))
    train_cfg, loss_cfg = script.get_train_config(SimpleNamespace(train_settings=None))
    train_cfg = dataclasses.replace(train_cfg, batch_size=2, workers=0, image_dump_interval=0,
                                    **train_overrides)
    model = load_model_checkpoint(parity_dir / f"small_{branch}.pth", "cpu", eval_mode=False)
    model = model.double().train()
    for m in model.modules():  # the fixtures' step runs without dropout
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.eval()
    return Trainer(model, train_cfg, loss_cfg, [0, 1], None, tmp_path, torch.device("cpu"))


def _settings(trainer: Trainer) -> dict:
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    return {
        names[id(p)]: (g["lr"], g["weight_decay"], tuple(g["betas"]), g["eps"],
                       type(trainer.optimizer).__name__)
        for g in trainer.optimizer.param_groups for p in g["params"]
    }


@pytest.mark.slow
@pytest.mark.parametrize("branch", list(SCRIPTS))
def test_one_training_step_equals_the_original(branch, parity_dir, tmp_path, monkeypatch,
                                               deterministic):
    ref = _reference(branch)
    batch = _batch()
    trainer = _trainer(branch, parity_dir, tmp_path)
    fixed = (batch["points"], batch.pop("prev"))
    monkeypatch.setattr(trainer, "simulate_clicks", lambda *args: fixed)
    params = dict(trainer.model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}

    scalars = trainer.train_step(batch)

    assert scalars is not None, "the step was skipped"
    assert set(ref["losses"]) == set(scalars) - {"overall", "iou"}
    terms = dict(ref["losses"], overall=ref["overall"])
    loss_diff = {k: abs(float(scalars[k]) - v) / abs(v) for k, v in terms.items()}

    # gradients: every parameter of the project, finite, equal to 1e-9 of its largest entry;
    # the original's parameters that the project does not have got no gradient there
    for name, digest in ref["grads"].items():
        if name not in params:
            assert digest is None, f"{name}: trained in the original, absent here"
    assert set(params) <= set(ref["grads"])
    grad_diff = {}
    for name, p in params.items():
        want = ref["grads"][name]
        if want is None:
            assert p.grad is None or not p.grad.any(), name
            continue
        assert p.grad is not None, f"{name}: no gradient here, one in the original"
        g = p.grad.reshape(-1)
        assert torch.isfinite(g).all(), f"{name}: non-finite gradient"
        grad_diff[name] = _digest_diff(g, want, max(want["absmax"], 1e-300))

    # the optimizer: same lr / weight decay / betas / eps per parameter, the same parameters
    _assert_same_settings(_settings(trainer), ref["optimizer"], params)

    # the update of one optimizer step, relative to the lr
    lr = max(s["lr"] for s in ref["optimizer"].values())
    update_diff = {
        name: _digest_diff((params[name].detach() - before[name]).reshape(-1), want, lr)
        for name, want in ref["update"].items()
    }
    worst_grad = max(grad_diff, key=grad_diff.get)
    worst_update = max(update_diff, key=update_diff.get)
    print(f"\n{branch}: loss rel diff {max(loss_diff.values()):.1e}, {len(grad_diff)} gradients "
          f"max rel diff {grad_diff[worst_grad]:.1e} ({worst_grad}), update max diff / lr "
          f"{update_diff[worst_update]:.1e}")
    assert max(loss_diff.values()) <= TOL, loss_diff
    assert grad_diff[worst_grad] <= TOL, (worst_grad, grad_diff[worst_grad])
    assert update_diff[worst_update] <= UPDATE_TOL, (worst_update, update_diff[worst_update])


def _digest_diff(t: torch.Tensor, want: dict, scale: float) -> float:
    """Largest difference between ``t`` and a fixture digest, relative to ``scale`` (sampled
    entries, max |t|) or to the digest's own size (sums)."""
    got = t[torch.tensor(want["idx"])]
    entries = (got - torch.tensor(want["values"], dtype=t.dtype)).abs().max().item() / scale
    absmax = abs(t.abs().max().item() - want["absmax"]) / scale
    sumabs, sumsq = max(want["sumabs"], 1e-300), max(want["sumsq"], 1e-300)
    sums = [abs(float(t.abs().sum()) - want["sumabs"]) / sumabs,
            abs(float(t.sum()) - want["sum"]) / sumabs,
            abs(float((t * t).sum()) - want["sumsq"]) / sumsq]
    return max([entries, absmax, *sums])


def _assert_same_settings(got: dict, want: dict, params: dict) -> None:
    """Per parameter: the same lr, weight decay, betas and eps; Adam and AdamW are the same
    rule when the weight decay is 0. Parameters the project does not have must be untrained
    (no gradient) in the original, checked by the caller."""
    want = {n: s for n, s in want.items() if n in params}
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:6]
    for name, s in want.items():
        lr, wd, betas, eps, opt = got[name]
        assert math.isclose(lr, s["lr"], rel_tol=1e-15), (name, lr, s["lr"])
        assert wd == s["weight_decay"], (name, wd, s["weight_decay"])
        assert betas == tuple(s["betas"]) and eps == s["eps"], name
        if wd != 0:
            assert opt == s["optimizer"], (name, opt, s["optimizer"])


@pytest.mark.parametrize("branch", list(SCRIPTS))
def test_layerwise_decay_groups_equal_the_original(branch, parity_dir, tmp_path):
    """``--layerwise-decay`` (0.75) of the seed scripts: the original's groups, per parameter."""
    ref = _reference(branch)
    trainer = _trainer(branch, parity_dir, tmp_path, layer_decay=0.75)
    params = dict(trainer.model.named_parameters())
    _assert_same_settings(_settings(trainer), ref["optimizer_layerwise_decay"], params)
