"""Lockstep batching (``isegm/inference/lockstep.py``, ``evaluate_model.py --batch-size``) gives
exactly the results of one object at a time (``evaluate_sample``, the reference definition).

float64: the small parity-size reference models on GrabCut images, with targets that make the
objects stop after different numbers of clicks (so freed slots are refilled mid-run), cascade
forward on one of them; clicks and IoUs must be identical. float32: the built-in default through
``evaluate_model.py``: the same NoC table, per-sample log, npz, plot and overlays for batch 1 and
batch 3, also when a batched run is resumed with another batch size.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_run_checks import (  # tests/inference is on sys.path
    REPO,
    assert_same_run,
    run_folder,
    skip_without_default_or_grabcut,
)

from isegm.data.datasets import get_eval_dataset
from isegm.inference import eval_settings
from isegm.inference.backends_cli import FORCE_ENV, cpu_precisions
from isegm.inference.batched import forward_batch
from isegm.inference.evaluation import evaluate_dataset
from isegm.inference.lockstep import evaluate_dataset_batched
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.utils import load_is_model


def _load_script():
    spec = importlib.util.spec_from_file_location("evaluate_model_lockstep", REPO /
                                                  "evaluate_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ev = _load_script()


@pytest.fixture(scope="module")
def grabcut(grabcut_dir: Path):
    if not grabcut_dir.is_dir():
        pytest.skip(f"GrabCut not found at {grabcut_dir}")
    return get_eval_dataset("GrabCut", {}, path_override=str(grabcut_dir))


class RowCounter:
    """Forward runner recording how many network rows each forward saw."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def __call__(self, requests):
        self.rows.append(sum(r.rows for r in requests))
        return forward_batch(requests)


def _predictor(model, size: int, **kwargs) -> NoBRSPredictor:
    settings = eval_settings.resolve_settings(eval_settings.PROJECT, {})
    return NoBRSPredictor(model, "cpu", with_flip=True,
                          zoom_in=eval_settings.make_zoom_in(size, settings), **kwargs)


# ------------------------------------------------------------------------ float64 parity
@pytest.mark.parity
@pytest.mark.parametrize("branch,target,cascade", [
    ("main", 0.05, {}),
    ("mst-448", 0.3, {"cascade_steps": 1, "cascade_adaptive": True, "cascade_clicks": 2}),
    ("simpleclick", 0.04, {}),
], ids=["main", "mst-448-cascade", "simpleclick"])
def test_float64_batched_equals_one_at_a_time(parity_dir, grabcut, branch, target, cascade):
    torch.set_num_threads(1)
    model = load_is_model(parity_dir / f"small_{branch}.pth", "cpu").double()
    kw = dict(indices=range(4), max_iou_thr=target, max_clicks=3)
    ref = list(evaluate_dataset(grabcut, _predictor(model, 128, **cascade), **kw))
    counter = RowCounter()
    got = list(evaluate_dataset_batched(
        grabcut, _predictor(model, 128, forward_runner=counter, **cascade), batch_size=3, **kw))

    n_clicks = [len(r.ious[0]) for r in ref]
    assert len(set(n_clicks)) > 1, n_clicks  # objects leave the batch at different clicks
    assert [r.index for r in got] == [r.index for r in ref] == list(range(4))
    for a, b in zip(ref, got):
        assert b.error is None and len(b.ious) == len(a.ious) == 1
        assert b.clicks == a.clicks  # same positions, signs and order
        np.testing.assert_array_equal(b.ious[0], a.ious[0])
    # the objects really shared forwards: 3 objects x 2 flip rows, and fewer forwards
    assert max(counter.rows) == 6
    assert len(counter.rows) < sum(n_clicks) * (1 + cascade.get("cascade_steps", 0))


def test_batch_size_is_validated(grabcut) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(evaluate_dataset_batched(grabcut, None, batch_size=0, max_iou_thr=0.9))


# ------------------------------------------------------------ float32 through the script
def _run(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ev.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _args(grabcut_dir: Path, logs: Path, limit: int, batch: int) -> list:
    # the built-in default model (weights/DEFAULT_MODEL_FILE) at its training size
    return ["--datasets", "GrabCut", "--dataset-path", f"GrabCut={grabcut_dir}",
            "--limit", limit, "--n-clicks", 3, "--target-iou", 0.9, "--cpu", "--threads", 1,
            "--logs-path", logs, "--batch-size", batch, "--vis"]


@pytest.fixture(scope="module")
def batch1(grabcut_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    skip_without_default_or_grabcut(grabcut_dir)
    logs = tmp_path_factory.mktemp("batch1")
    code, out, err = _run(_args(grabcut_dir, logs, 4, 1))
    assert code == 0, err
    return run_folder(logs), out


def _assert_same_results(run_dir: Path, out: str, ref_dir: Path, ref_out: str) -> None:
    assert_same_run(run_dir, out, ref_dir, ref_out)
    vis = sorted(p.relative_to(run_dir) for p in (run_dir / "vis").rglob("*.jpg"))
    assert vis == sorted(p.relative_to(ref_dir) for p in (ref_dir / "vis").rglob("*.jpg"))
    assert len(vis) == 4
    for rel in vis:
        assert (run_dir / rel).read_bytes() == (ref_dir / rel).read_bytes(), rel


def test_float32_default_same_noc_table_and_files(grabcut_dir, tmp_path, batch1) -> None:
    logs = tmp_path / "b3"
    code, out, err = _run(_args(grabcut_dir, logs, 4, 3))
    assert code == 0, err
    _assert_same_results(run_folder(logs), out, *batch1)


def test_batched_run_resumes_with_another_batch_size(grabcut_dir, tmp_path, batch1) -> None:
    logs = tmp_path / "resumed"
    code, _, err = _run(_args(grabcut_dir, logs, 2, 2))
    assert code == 0, err
    code, out, err = _run(_args(grabcut_dir, logs, 4, 3) + ["--resume"])
    assert code == 0, err
    run_dir = run_folder(logs)
    row = json.loads((run_dir / "summary.json").read_text())["rows"][0]
    assert (row["reused_samples"], row["evaluated_samples"]) == (2, 2)
    _assert_same_results(run_dir, out, *batch1)


# -------------------------------------------------------------------------------- precision
def test_precision_flags(grabcut_dir, tmp_path, batch1, monkeypatch) -> None:
    code, _, err = _run(_args(grabcut_dir, tmp_path / "fp16", 1, 1) + ["--precision", "fp16"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("error: --precision fp16 needs CUDA; CPU precisions offered: fp32")
    assert not (tmp_path / "fp16").exists() or not any((tmp_path / "fp16").iterdir())

    bf16 = _args(grabcut_dir, tmp_path / "bf16", 1, 2) + ["--precision", "bf16"]
    monkeypatch.delenv(FORCE_ENV, raising=False)
    if not cpu_precisions()["bf16"]:  # refused in one line, unless forced
        code, _, err = _run(bf16)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "--precision bf16: this CPU has no fast bf16 instructions" in err
        monkeypatch.setenv(FORCE_ENV, "1")
    code, _, err = _run(bf16)
    assert code == 0, err
    run_dir = run_folder(tmp_path / "bf16")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rows"][0]["precision"] == "bf16"
    assert summary["key_options"]["precision"] == "bf16"
    assert run_dir.name != batch1[0].name  # other numbers: another run folder
    ref = json.loads((batch1[0] / "summary.json").read_text())
    assert ref["rows"][0]["precision"] == "fp32" and "precision" not in ref["key_options"]
    assert ref["rows"][0]["backend"] == "torch" and "backend" not in ref["key_options"]
