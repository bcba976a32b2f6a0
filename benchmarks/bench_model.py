#!/usr/bin/env python
"""Model speed on this machine: per-click forward latency, achieved GFLOP/s, parameters,
training-step time and peak memory, for the plain ViT-B (SimpleClick) and the two MST
architectures, all measured in one run (each measurement in its own subprocess, so peak RSS is
per measurement).

    python benchmarks/bench_model.py                      # 448 only, writes BENCHMARKS.md
    python benchmarks/bench_model.py --sizes 224,448,672 --reference ../shared/ref_runner/bench_ref.py

Per click: batch 1, eval, no grad, ``--threads`` threads, ``--warmup`` untimed runs, median of
``--reps``. ``full`` is ``model(image, points)``; ``click`` is the part a predictor runs per click
once the image encoding is cached (``forward_embedded``). GFLOPs are counted by
``torch.utils.flop_counter`` (2·MAC for matmuls and convs). Train step: fwd + bwd, batch 2,
train mode, BCE on the logits.

Other devices, batch sizes and precisions (``benchmarks/gpu_check.sh``): ``--device cuda``,
``--batch 1,8,32`` (rows per forward), ``--precision fp32,bf16`` (autocast), ``--models`` (a
subset of the architectures below); such runs print their rows and do not touch BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "plain ViT-B (SimpleClick)": "simpleclick_vit_base_448",
    "MST main": "mst_main_vit_base_448",
    "MST mst-448": "mst_448_vit_base_448",
}
REF_BRANCH = {
    "simpleclick_vit_base_448": "simpleclick",
    "mst_main_vit_base_448": "main",
    "mst_448_vit_base_448": "mst-448",
}


def _inputs(size: int, batch: int):
    import torch

    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 4, size, size, generator=g)
    image[:, 3] = (image[:, 3] > 0.5).float()
    s = size / 448
    pts = torch.tensor(
        [[223, 207, 0], [400, 170, 2], [-1, -1, -1], [105, 342, 1], [-1, -1, -1], [-1, -1, -1]],
        dtype=torch.float32,
    )
    pts[pts[:, 0] >= 0, :2] = (pts[pts[:, 0] >= 0, :2] * s).floor()
    return image, pts.unsqueeze(0).repeat(batch, 1, 1)


def _median_time(fn, warmup: int, reps: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def measure_one(arch: str, size: int, mode: str, warmup: int, reps: int, threads: int,
                batch: int | None = None, device: str = "cpu", precision: str = "fp32") -> dict:
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from isegm.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    model = build_model(arch, img_size=size).to(dev)
    out = {
        "arch": arch,
        "size": size,
        "mode": mode,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "device": device,
        "precision": precision,
    }
    autocast = (
        torch.autocast(dev.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision])
        if precision != "fp32"
        else contextlib.nullcontext()
    )

    def on_device(fn):
        def run():
            with autocast:
                fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        return run

    if mode == "train":
        model.train()
        image, points = (t.to(dev) for t in _inputs(size, batch or 2))

        def step():
            model.zero_grad(set_to_none=True)
            logits = model(image, points)["instances"]
            torch.nn.functional.binary_cross_entropy_with_logits(logits, image[:, 3:]).backward()

        times = _median_time(on_device(step), warmup, reps)
    else:
        model.eval()
        image, points = (t.to(dev) for t in _inputs(size, batch or 1))
        with torch.no_grad():
            emb = model.encode_image(image[:, :3])
            if mode == "full":
                fn = lambda: model(image, points)  # noqa: E731
            else:
                fn = lambda: model.forward_embedded(emb, image[:, 3:], points)  # noqa: E731
            # count with the explicit attention path: the flop counter has no formula for the CPU
            # flash-attention kernel that SDPA dispatches to (same math, same count)
            for m in model.modules():
                if hasattr(m, "fused_attn"):
                    m.fused_attn = False
            counter = FlopCounterMode(display=False)
            with counter, autocast:
                fn()
            out["gflops"] = counter.get_total_flops() / 1e9
            for m in model.modules():
                if hasattr(m, "fused_attn"):
                    m.fused_attn = True
            times = _median_time(on_device(fn), warmup, reps)
    out["median_s"] = statistics.median(times)
    out["min_s"], out["max_s"] = min(times), max(times)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def matmul_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(3136, 768), torch.randn(768, 3072)
    times = _median_time(lambda: a @ b, 3, 15)
    return 2 * 3136 * 768 * 3072 / statistics.median(times) / 1e9


def _sub(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(ARGS.threads)}
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _reference(ref_script: str, arch: str, train: bool) -> dict | None:
    args = [
        sys.executable,
        ref_script,
        REF_BRANCH[arch],
        "--threads",
        str(ARGS.threads),
        "--reps",
        str(ARGS.reps),
        "--warmup",
        str(ARGS.warmup),
    ]
    if train:
        args.append("--train-step")
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    return json.loads(lines[-1]) if proc.returncode == 0 and lines else None


def main_grid() -> None:
    """``--device``/``--batch``/``--precision`` runs: one line per model x size x precision x
    batch (forward, per click, per-row time), nothing written."""
    extra = ["--device", ARGS.device]
    wanted = [m for m in ARGS.models.split(",") if m]
    models = {k: v for k, v in MODELS.items() if not wanted or v in wanted}
    models.update({a: a for a in wanted if a not in MODELS.values()})  # any registered arch
    print(f"device {ARGS.device}, {ARGS.threads} threads", flush=True)
    for size in (int(s) for s in ARGS.sizes.split(",")):
        for prec in ARGS.precision.split(","):
            for b in (int(x) for x in ARGS.batch.split(",")):
                for label, arch in models.items():
                    flags = [*extra, "--batch", str(b), "--precision", prec]
                    full = _sub(["--one", arch, str(size), "full", *flags])
                    click = _sub(["--one", arch, str(size), "click", *flags])
                    mem = f", peak CUDA {full['peak_cuda_mb']:.0f} MB" if "peak_cuda_mb" in full \
                        else ""
                    print(f"{label:<26} {size} {prec} batch {b:>3}: full {full['median_s']:.4f} s "
                          f"({full['gflops'] / full['median_s']:.0f} GF/s), per click "
                          f"{click['median_s']:.4f} s = {click['median_s'] / b * 1000:.2f} ms/row"
                          f"{mem}", flush=True)
        if not ARGS.no_train:
            for label, arch in models.items():
                for prec in ARGS.precision.split(","):
                    tr = _sub(["--one", arch, str(size), "train", *extra, "--precision", prec,
                               "--reps", str(ARGS.train_reps), "--warmup", "1"])
                    print(f"train step {label} {size} {prec} (batch 2): {tr['median_s']:.3f} s",
                          flush=True)


def main() -> None:
    sizes = [int(s) for s in ARGS.sizes.split(",")]
    rows, train_rows = [], []
    peak = matmul_gflops(ARGS.threads)
    print(f"matmul (3136x768 @ 768x3072, {ARGS.threads} threads): {peak:.1f} GFLOP/s", flush=True)
    for size in sizes:
        base = {}
        for label, arch in MODELS.items():
            full = _sub(["--one", arch, str(size), "full"])
            click = _sub(["--one", arch, str(size), "click"])
            ref = (
                _reference(ARGS.reference, arch, False) if ARGS.reference and size == 448 else None
            )
            if arch.startswith("simpleclick"):
                base = full
            row = dict(
                label=label,
                size=size,
                full=full,
                click=click,
                ref=ref,
                ratio=full["median_s"] / base["median_s"] if base else float("nan"),
            )
            rows.append(row)
            print(_fmt_row(row, peak), flush=True)
    for label, arch in MODELS.items():
        if ARGS.no_train:
            break
        tr = _sub(["--one", arch, "448", "train", "--reps", str(ARGS.train_reps), "--warmup", "1"])
        ref = _reference(ARGS.reference, arch, True) if ARGS.reference else None
        train_rows.append(dict(label=label, train=tr, ref=ref))
        print(
            f"train step {label}: {tr['median_s']:.2f} s, peak RSS {tr['peak_rss_mb']:.0f} MB"
            + (f", reference {ref['median_s']:.2f} s" if ref else ""),
            flush=True,
        )
    if ARGS.write:
        _write_markdown(rows, train_rows, peak)


def _fmt_row(r: dict, peak: float) -> str:
    f, c = r["full"], r["click"]
    ref = (
        f", reference {r['ref']['median_s']:.2f} s (ours/ref {f['median_s'] / r['ref']['median_s']:.2f})"
        if r["ref"]
        else ""
    )
    return (
        f"{r['label']:<26} {r['size']}: full {f['median_s']:.3f} s ({f['gflops']:.0f} GF, "
        f"{f['gflops'] / f['median_s']:.0f} GF/s = {100 * f['gflops'] / f['median_s'] / peak:.0f} % of matmul), "
        f"per click {c['median_s']:.3f} s, x{r['ratio']:.2f} of plain, params {f['params'] / 1e6:.1f} M, "
        f"RSS {f['peak_rss_mb']:.0f} MB{ref}"
    )


def _write_markdown(rows, train_rows, peak) -> None:
    import platform

    lines = [
        "<!-- bench_model:start -->",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{__import__('torch').__version__}, {ARGS.threads} threads; matmul {peak:.0f} GFLOP/s. "
        f"Command: `python benchmarks/bench_model.py {' '.join(sys.argv[1:])}`.",
        "",
        "| model | size | forward s (median) | per click s (cached image) | GFLOPs | GFLOP/s | % of matmul | x plain ViT | params M | peak RSS MB | reference s | ours / reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, c, ref = r["full"], r["click"], r["ref"]
        lines.append(
            f"| {r['label']} | {r['size']} | {f['median_s']:.3f} | {c['median_s']:.3f} | "
            f"{f['gflops']:.0f} | {f['gflops'] / f['median_s']:.0f} | "
            f"{100 * f['gflops'] / f['median_s'] / peak:.0f} | {r['ratio']:.2f} | "
            f"{f['params'] / 1e6:.1f} | {f['peak_rss_mb']:.0f} | "
            f"{ref['median_s']:.2f} | {f['median_s'] / ref['median_s']:.2f} |"
            if ref
            else f"| {r['label']} | {r['size']} | {f['median_s']:.3f} | {c['median_s']:.3f} | "
            f"{f['gflops']:.0f} | {f['gflops'] / f['median_s']:.0f} | "
            f"{100 * f['gflops'] / f['median_s'] / peak:.0f} | {r['ratio']:.2f} | "
            f"{f['params'] / 1e6:.1f} | {f['peak_rss_mb']:.0f} | – | – |"
        )
    if train_rows:
        plain = train_rows[0]["train"]["median_s"]
        lines += [
            "",
            "| model | train step s (fwd+bwd, batch 2, 448) | x plain ViT | peak RSS MB | reference s |",
            "|---|---|---|---|---|",
        ]
        for t in train_rows:
            ref = f"{t['ref']['median_s']:.2f}" if t["ref"] else "–"
            lines.append(
                f"| {t['label']} | {t['train']['median_s']:.2f} | {t['train']['median_s'] / plain:.2f} | "
                f"{t['train']['peak_rss_mb']:.0f} | {ref} |"
            )
    lines += ["", "<!-- bench_model:end -->"]
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    block = "\n".join(lines)
    if "<!-- bench_model:start -->" in text:
        text = re.sub(
            r"<!-- bench_model:start -->.*<!-- bench_model:end -->", block, text, flags=re.S
        )
    else:
        text += "\n## Model speed (`benchmarks/bench_model.py`)\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="448")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--train-reps", type=int, default=5)
    p.add_argument(
        "--reference",
        default=None,
        help="path to shared/ref_runner/bench_ref.py to time the original side by side",
    )
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--write", action="store_true", default=True)
    p.add_argument("--no-write", dest="write", action="store_false",
                   help="do not update BENCHMARKS.md")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i] (not cpu: no markdown)")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes (forward rows)")
    p.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16, fp16")
    p.add_argument("--models", default="",
                   help="comma-separated registered architectures (default: the three above)")
    p.add_argument("--one", nargs=3, metavar=("ARCH", "SIZE", "MODE"), help=argparse.SUPPRESS)
    ARGS = p.parse_args()
    if ARGS.one:
        arch, size, mode = ARGS.one
        one_batch = None if ARGS.batch == "1" else int(ARGS.batch)
        print(json.dumps(measure_one(arch, int(size), mode, ARGS.warmup, ARGS.reps, ARGS.threads,
                                     one_batch, ARGS.device, ARGS.precision)))
    elif ARGS.device != "cpu" or ARGS.batch != "1" or ARGS.precision != "fp32" or ARGS.models:
        main_grid()
    else:
        main()
