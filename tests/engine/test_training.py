"""Training: the model learns, DDP equals one process, kill -9 + resume is exact, a training
checkpoint evaluates, bad flags stop at start with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isegm.inference.utils import load_is_model

REPO = Path(__file__).resolve().parents[2]
EXP = str(Path(__file__).with_name("tiny_experiment.py"))
pytestmark = pytest.mark.slow


def _run(args, env=None, timeout=600, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _tiny(script: str, root: Path, *extra: str) -> list[str]:
    """Command line of a CPU run of the tiny test experiment writing under ``root``."""
    return [script, EXP, "--cpu", "--workers", "0", "--exps-path", str(root), *extra]


def _weights(exp_dir: Path) -> dict:
    return torch.load(exp_dir / "checkpoints" / "last.pth", weights_only=True)["model"]


def _only_dir(root: Path) -> Path:
    (d,) = [p for p in (root / "tiny_test").iterdir() if p.is_dir()]
    return d


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("single")
    _run(_tiny("train.py", root, "--exp-name", "a"))
    return _only_dir(root)


def test_ddp_two_processes_equal_single_process(tmp_path):
    plain = {"TINY_ARCH": "plainvit"}
    _run(_tiny("train.py", tmp_path / "one", "--exp-name", "a"), env=plain)
    single_run = _only_dir(tmp_path / "one")
    port = str(29000 + os.getpid() % 1000)
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port]
    _run(launcher + _tiny("dis_train.py", tmp_path / "two", "--exp-name", "ddp"), env=plain)
    ddp_dir = _only_dir(tmp_path / "two")
    sums = json.loads((ddp_dir / "weights_checksum.json").read_text())["per_rank"]
    assert len(sums) == 2 and sums[0] == sums[1]  # the ranks hold identical weights
    ddp, single, init = _weights(ddp_dir), _weights(single_run), _init_weights()
    # Same global batch → the same updates up to float32 summation order (a batch of 2+2 vs 4),
    # which Adam's normalisation amplifies for tiny gradients: measured ≤ 0.12 % of each
    # tensor's total update; a missing gradient average or a wrong data split gives ~100 %.
    assert sum((single[k] != init[k]).any().item() for k in single) > 0.9 * len(single)
    for k in single:
        update = (single[k] - init[k]).norm()
        assert (ddp[k] - single[k]).norm() <= 1e-2 * update, k


def _init_weights():
    os.environ["TINY_ARCH"] = "plainvit"
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_exp", EXP)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    try:
        return mod.init_model(None).state_dict()
    finally:
        del os.environ["TINY_ARCH"]


def test_kill_and_resume_gives_same_weights(single_run, tmp_path):
    args = _tiny("train.py", tmp_path, "--exp-name", "k")
    killed = _run(args, env={"ISEGM_KILL_AFTER_STEPS": "5"}, check=False)
    assert killed.returncode == -9  # really killed mid-run (epoch 1, step 1)
    exp_dir = _only_dir(tmp_path)
    state = torch.load(exp_dir / "checkpoints" / "last.pth", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 1)
    _run(_tiny("train.py", tmp_path, "--resume-exp", exp_dir.name[:3]))
    resumed, straight = _weights(exp_dir), _weights(single_run)
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k


def test_training_checkpoint_evaluates(single_run, grabcut_dir):
    import cv2

    from isegm.inference.evaluation import evaluate_sample
    from isegm.inference.predictor import NoBRSPredictor

    model = load_is_model(single_run / "checkpoints" / "last.pth", "cpu")
    image = cv2.cvtColor(cv2.imread(str(grabcut_dir / "data_GT" / "llama.bmp")), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(str(grabcut_dir / "boundary_GT" / "llama.bmp"))[..., 0]
    gt = np.where(mask == 128, -1, (mask > 128).astype(np.int32))
    predictor = NoBRSPredictor(model, "cpu", with_flip=True)
    clicks, ious, probs = evaluate_sample(image, gt, predictor, max_iou_thr=0.99, max_clicks=3)
    assert len(ious) == 3 and np.isfinite(ious).all() and probs.shape == gt.shape


def test_learns_on_synthetic(tmp_path):
    """A short CPU run: validation IoU rises well above its starting value."""
    from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset
    from isegm.data.points_sampler import MultiPointSampler
    from isegm.engine.trainer import LossConfig, TrainConfig, Trainer
    from isegm.model import build_model
    from isegm.model.build import selection_preset

    torch.manual_seed(0)
    sel = selection_preset("main", score_blocks=(1, 3), score_sr=1)
    model = build_model("mst_tiny_224", img_size=96, depth=4, selection=sel)
    kw = dict(
        image_size=96,
        points_sampler=MultiPointSampler(6, prob_gamma=0.8),
        min_object_area=8,
        objects_per_image=(1, 3),
        scale="large",
    )
    train = SyntheticMultiScaleDataset(num_samples=4000, **kw)
    val = SyntheticMultiScaleDataset(num_samples=32, seed=5, **kw)
    cfg = TrainConfig(
        epochs=1,
        batch_size=8,
        lr=1e-3,
        milestones=(100,),
        workers=0,
        max_steps_per_epoch=120,
        image_dump_interval=0,
        checkpoint_interval=0,
        max_num_next_clicks=2,
    )
    (tmp_path / "checkpoints").mkdir()
    trainer = Trainer(
        model, cfg, LossConfig(token_weight=0.1, score_weight=0.1), train, val, tmp_path, "cpu"
    )
    from torch.utils.tensorboard import SummaryWriter

    trainer.writer = SummaryWriter(str(tmp_path / "tb"))
    before = trainer.validate()
    trainer.train_epoch()
    after = trainer.validate()
    assert before < 0.2 and after > 0.45, (before, after)


def test_bad_flags_stop_with_one_line(tmp_path):
    no_gpu = _run(
        [
            "dis_train.py",
            "models/adaptivevit_base448_cclvs.py",
            "--batch-size",
            "60",
            "--model_base_name",
            "cclvs_adaptivevit_base448",
            "--exp-name",
            "3s_mst",
            "--gpus",
            "0,1,2,3,4,5",
            "--dport",
            "29500",
            "--workers",
            "2",
            "--img_size",
            "448",
            "--amp",
        ],
        check=False,
    )
    if not torch.cuda.is_available():
        assert no_gpu.returncode == 2
        assert no_gpu.stderr.strip().count("\n") == 0 and "CUDA is not available" in no_gpu.stderr
    no_data = _run(
        ["train.py", "models/adaptivevit_base448_cclvs.py", "--cpu", "--exps-path", str(tmp_path)],
        check=False,
    )
    assert no_data.returncode == 2 and "LVIS_v1_PATH" in no_data.stderr
    assert no_data.stderr.strip().count("\n") == 0
    missing = _run(["train.py", "models/does_not_exist.py", "--cpu"], check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr
