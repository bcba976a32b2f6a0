"""CPU precisions and backends (issue 25): the flags and their checks, the bf16 / int8 models
and their stated accuracy, the ONNX export and the onnxruntime backend.

Accuracy bounds (|logit difference| against the eager fp32 model, measured on the parity
inputs: two GrabCut images with 3 and 5 clicks; the default at 224, the small parity models at
448; README "Precision and ONNX" has the figures):

* bf16 autocast: max <= 0.15, mean <= 0.02 (measured max 0.04-0.05, mean 0.004-0.006);
* int8 (torch, dynamic Linear): max <= 0.5, mean <= 0.05 (measured max 0.04-0.15, mean
  0.008-0.02);
* onnxruntime fp32: max <= 1e-4 (measured ~1e-5); onnxruntime int8: as torch int8.

bf16 runs here whether or not the CPU has the instructions (``ISEGM_FORCE_PRECISION=1``): the
numbers are the same, only the speed differs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isegm.inference.backends import AutocastModel, load_inference_model, with_precision
from isegm.inference.backends_cli import (
    FORCE_ENV,
    add_precision_arguments,
    check_precision,
    cpu_flags,
    cpu_precisions,
    describe_cpu,
)
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.utils import DEFAULT_MODEL_FILE, load_is_model

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "weights" / DEFAULT_MODEL_FILE
BRANCHES = ["main", "mst-448", "simpleclick"]
BOUNDS = {  # precision, backend -> (max, mean) of |logit - fp32 logit|
    ("bf16", "torch"): (0.15, 0.02),
    ("int8", "torch"): (0.5, 0.05),
    ("int8", "onnxruntime"): (0.5, 0.05),
}
AVX2 = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})
ZEN4 = AVX2 | {"avx512f", "avx512_bf16", "avx512_vnni"}


# ------------------------------------------------------------------------ flags and checks
def test_cpu_flags_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                   "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert cpu_precisions(cpu_flags(str(arm))) == {"fp32": True, "bf16": True, "int8": True}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_what_each_cpu_offers():
    assert cpu_precisions(AVX2) == {"fp32": True, "bf16": False, "int8": True}
    assert cpu_precisions(ZEN4) == {"fp32": True, "bf16": True, "int8": True}
    assert cpu_precisions(frozenset({"fpu", "sse2"}))["int8"] is False
    line = describe_cpu(AVX2)
    assert line.startswith("CPU precisions offered: fp32, int8 (flags: avx2")
    assert "bf16 refused" in line and "\n" not in line
    assert describe_cpu(ZEN4).startswith("CPU precisions offered: fp32, bf16, int8")


def test_check_precision_refuses_in_one_line(monkeypatch):
    monkeypatch.delenv(FORCE_ENV, raising=False)
    assert check_precision("bf16", "torch", "cpu", ZEN4).startswith("CPU precisions offered")
    assert check_precision("int8", "onnxruntime", "cpu", AVX2)
    assert check_precision("fp16", "torch", "cuda", AVX2)
    cases = [
        (("bf16", "torch", "cpu", AVX2), "--precision bf16: this CPU has no fast bf16"),
        (("int8", "torch", "cpu", frozenset({"sse2"})), "--precision int8: this CPU has no"),
        (("fp16", "torch", "cpu", ZEN4), "--precision fp16 needs CUDA"),
        (("int8", "torch", "cuda", ZEN4), "--precision int8 runs on the CPU only"),
        (("bf16", "onnxruntime", "cpu", ZEN4), "--backend onnxruntime: --precision bf16"),
        (("fp32", "onnxruntime", "cuda", ZEN4), "--backend onnxruntime runs on the CPU"),
        (("fp8", "torch", "cpu", ZEN4), "--precision fp8: expected one of"),
        (("fp32", "tvm", "cpu", ZEN4), "--backend tvm: expected one of"),
    ]
    for args, start in cases:
        with pytest.raises(ValueError) as e:
            check_precision(*args)
        assert str(e.value).startswith(start) and "\n" not in str(e.value), args
    monkeypatch.setenv(FORCE_ENV, "1")
    assert "forced" in check_precision("bf16", "torch", "cpu", AVX2)


def test_add_precision_arguments():
    p = argparse.ArgumentParser()
    add_precision_arguments(p)
    args = p.parse_args([])
    assert (args.precision, args.backend) == ("fp32", "torch")
    assert p.parse_args(["--precision", "int8", "--backend", "onnxruntime"]).precision == "int8"
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        p.parse_args(["--precision", "fp16"])  # CPU-only command lines: no fp16
    q = argparse.ArgumentParser()
    add_precision_arguments(q, cuda=True)
    assert q.parse_args(["--precision", "fp16"]).precision == "fp16"
    assert "CPU precisions offered" in " ".join(q.format_help().split())


def test_module_is_torch_free():
    code = ("import sys, isegm.inference.backends_cli as b; import argparse; "
            "b.add_precision_arguments(argparse.ArgumentParser()); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------------------------------ the models
def _default_or_skip() -> Path:
    if not DEFAULT.is_file():
        pytest.skip(f"{DEFAULT} not found")
    return DEFAULT


@pytest.fixture(scope="module")
def inputs(parity_dir):
    data = torch.load(parity_dir / "inputs.pt", weights_only=True)
    return data["image_u8"].float() / 255, data["points"].float()


def _at_224(image: torch.Tensor, points: torch.Tensor):
    """The parity inputs at the default's training size (clicks halved, padding kept)."""
    x = F.interpolate(image, size=(224, 224), mode="bilinear", align_corners=False)
    x[:, 3] = (x[:, 3] > 0.5).float()
    valid = points[..., :1] >= 0
    yx = torch.where(valid, (points[..., :2] / 2).floor(), points[..., :2])
    return x, torch.cat([yx, points[..., 2:]], -1)


def _case(name: str, parity_dir: Path, inputs):
    """(checkpoint, image, points) of a named model."""
    image, points = inputs
    if name == "default":
        return (_default_or_skip(), *_at_224(image, points))
    return parity_dir / f"small_{name}.pth", image, points


def _logits(model, image, points) -> torch.Tensor:
    with torch.no_grad():
        return model(image, points)["instances"]


def test_autocast_model_is_called_like_the_model(monkeypatch):
    monkeypatch.setenv(FORCE_ENV, "1")
    base = load_is_model(_default_or_skip())
    ref = copy.deepcopy(base)
    net = with_precision(base, "bf16", "cpu")
    assert isinstance(net, AutocastModel) and list(net.parameters()) == []
    assert net.cfg is base.cfg and net.with_prev_mask and net.min_size_multiple == 32
    assert all(m.weight.dtype == torch.bfloat16 for m in base.modules()
               if isinstance(m, torch.nn.Linear))
    image = torch.rand(2, 4, 224, 224)
    points = torch.tensor([[[100.0, 90.0, 0.0], [-1.0, -1.0, -1.0], [20.0, 30.0, 1.0],
                            [-1.0, -1.0, -1.0]]] * 2)
    out = _logits(net, image, points)
    assert out.dtype == torch.float32
    with torch.no_grad():
        emb = net.encode_image(image[:, :3])
        assert emb["x"].dtype == torch.bfloat16  # the image work ran in bf16 too
        per_click = net.forward_embedded(emb, image[:, 3:], points)["instances"]
    assert torch.equal(per_click, out)
    diff = (out - _logits(ref, image, points)).abs().max().item()
    assert 0 < diff < BOUNDS["bf16", "torch"][0]  # bf16 did run, and stays close
    with torch.autocast("cpu", dtype=torch.bfloat16):  # weights cast once: autocast's numbers
        plain = _logits(ref, image, points).float()
    # (bit-identical at 1 thread; with 2 a kernel may sum in another order: a bf16 step)
    assert (plain - out).abs().max().item() <= 0.02
    predictor = NoBRSPredictor(net, "cpu", with_flip=True)
    assert predictor.dtype == torch.float32  # the predictor keeps feeding float32
    predictor.set_input_image(np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8))
    from isegm.inference.clicker import Click

    class _Clicks:
        def get_clicks(self):
            return [Click(True, (40.0, 60.0), 0)]

    probs = predictor.get_prediction(_Clicks())
    assert probs.shape == (96, 128) and probs.dtype == np.float32


def test_int8_quantises_the_linear_layers():
    base = load_is_model(_default_or_skip())
    net = with_precision(base, "int8", "cpu")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    n_linear = sum(type(m) is torch.nn.Linear for m in base.modules())
    assert sum(isinstance(m, DynamicLinear) for m in net.modules()) == n_linear > 0
    assert not any(type(m) is torch.nn.Linear for m in net.modules())
    assert any(type(m) is torch.nn.Linear for m in base.modules())  # the original is kept


#: (model, precision, backend): every torch precision on every model; onnxruntime int8 on the
#: default (the parity models' ONNX graphs are held to eager fp32 by the export test below)
LOW_PRECISION_CASES = [(name, precision, backend) for name in ["default", *BRANCHES]
                       for precision, backend in BOUNDS
                       if backend == "torch" or name == "default"]


@pytest.mark.parity
@pytest.mark.parametrize("name,precision,backend", LOW_PRECISION_CASES,
                         ids=["-".join(case) for case in LOW_PRECISION_CASES])
def test_low_precision_logits_within_bounds(name, precision, backend, parity_dir, inputs,
                                           monkeypatch, tmp_path):
    monkeypatch.setenv(FORCE_ENV, "1")
    monkeypatch.setenv("ISEGM_CACHE", str(tmp_path))
    path, image, points = _case(name, parity_dir, inputs)
    base = load_is_model(path)
    ref = _logits(base, image, points)
    net = with_precision(copy.deepcopy(base), precision, "cpu", backend,
                         size=image.shape[-1], source=path)
    diff = (_logits(net, image, points) - ref).abs()
    worst, mean = BOUNDS[precision, backend]
    assert 0 < diff.max().item() <= worst, diff.max().item()
    assert diff.mean().item() <= mean, diff.mean().item()


# --------------------------------------------------------------------------- ONNX, onnxruntime
@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize("name", ["default", *BRANCHES])
def test_onnx_export_matches_eager(name, parity_dir, inputs, tmp_path, monkeypatch):
    """Export (python -m isegm.export), run through onnxruntime with 2 batch rows and with
    other numbers of click rows (a dynamic axis): max |Δ| <= 1e-4 against eager fp32."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ISEGM_CACHE", str(tmp_path / "cache"))
    path, image, points = _case(name, parity_dir, inputs)
    out = tmp_path / f"{name}.onnx"
    from isegm.export import main as export_main

    assert export_main(["--checkpoint", str(path), "--output", str(out),
                        "--size", str(image.shape[-1])]) == 0
    eager = load_is_model(path)
    net = load_inference_model(out, "cpu", backend="onnxruntime")
    assert list(net.parameters()) == [] and net.with_prev_mask == eager.with_prev_mask
    fewer = points[:, [0, 4]]  # 1 positive + 1 negative row (a first click) instead of 4 + 4
    more = torch.cat([points[:, :4], torch.full((2, 2, 3), -1.0), points[:, 4:],
                      torch.full((2, 2, 3), -1.0)], 1)  # 6 + 6 rows
    for pts in (points, fewer, more):
        diff = (_logits(net, image, pts) - _logits(eager, image, pts)).abs().max().item()
        assert diff <= 1e-4, (pts.shape, diff)
    one = (_logits(net, image[1:], points[1:]) - _logits(eager, image[1:], points[1:])).abs()
    assert one.max().item() <= 1e-4


def test_export_command_errors_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "isegm.export", "--checkpoint",
                          str(tmp_path / "missing.pth"), "--output", str(tmp_path / "m.onnx")],
                         capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing.pth" in lines[0]
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_file_needs_the_onnxruntime_backend(tmp_path):
    with pytest.raises(ValueError, match="needs --backend onnxruntime"):
        load_inference_model(tmp_path / "m.onnx", "cpu")
    with pytest.raises(ValueError, match="no such ONNX file"):
        load_inference_model(tmp_path / "m.onnx", "cpu", backend="onnxruntime")


def test_evaluate_model_with_onnxruntime(grabcut_dir, tmp_path, monkeypatch):
    """evaluate_model.py --backend onnxruntime: the predictor runs the exported model; the
    row and the run folder's key say so; bf16 there is refused in one line."""
    pytest.importorskip("onnxruntime")
    _default_or_skip()
    if not grabcut_dir.is_dir():
        pytest.skip(f"GrabCut not found at {grabcut_dir}")
    monkeypatch.setenv("ISEGM_CACHE", str(tmp_path / "cache"))
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_model_prec", REPO / "evaluate_model.py")
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)

    def run(*extra: str) -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = ev.main(["--datasets", "GrabCut", "--dataset-path", f"GrabCut={grabcut_dir}",
                            "--limit", "1", "--n-clicks", "2", "--cpu", "--threads", "1",
                            "--logs-path", str(tmp_path / "logs"), *extra])
        return code, err.getvalue()

    code, err = run("--backend", "onnxruntime", "--precision", "bf16")
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        "error: --backend onnxruntime: --precision bf16 is not offered")
    code, err = run("--backend", "onnxruntime")
    assert code == 0, err
    run_dir = next((tmp_path / "logs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rows"][0]["backend"] == "onnxruntime"
    assert summary["key_options"]["backend"] == "onnxruntime"
    assert list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # exported once, cached
