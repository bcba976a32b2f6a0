#!/usr/bin/env python
"""CPU inference speed by precision and backend (issue 25): fp32, bf16 autocast, int8 dynamic
quantisation (torch), onnxruntime fp32 and int8, each as
:func:`isegm.inference.backends.with_precision` makes it for the predictor.

    python benchmarks/bench_precision.py                                   # every model below
    python benchmarks/bench_precision.py --models default --threads 1     # the built-in default

Models: MST main and mst-448 and SimpleClick ViT-B at 448 (random weights, seed 0: speed does
not depend on the values) and the built-in default (``weights/mst_tiny_photos_bigobjects.pth``
at its training size). Per measurement: its own subprocess (``--threads`` torch and
onnxruntime threads), batch ``--batch`` (1; the predictor's flip makes 2), ``--warmup`` untimed
runs, median of ``--reps``. ``full`` is ``model(image, points)``; ``click`` is what the
predictor runs per click after the first: ``forward_embedded`` with the image encoding cached
(computed once through the same wrapper, as the predictor does); for onnxruntime the
click graph of the exported pair, with the encoder graph's embedding cached (its ``full`` is
the encoder and the click graph in a row). Ratios are against fp32 torch of the same
model, threads and run. A precision the CPU does not offer is skipped with the reason
(``ISEGM_FORCE_PRECISION=1`` times it anyway). Nothing is written: paste the table into
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "MST main 448": "mst_main_vit_base_448",
    "MST mst-448": "mst_448_vit_base_448",
    "SimpleClick ViT-B 448": "simpleclick_vit_base_448",
    "default (tiny MST 224)": "weights/mst_tiny_photos_bigobjects.pth",
}
SHORT = {"main": "mst_main_vit_base_448", "mst-448": "mst_448_vit_base_448",
         "simpleclick": "simpleclick_vit_base_448",
         "default": "weights/mst_tiny_photos_bigobjects.pth"}
PATHS = [("fp32", "torch"), ("bf16", "torch"), ("int8", "torch"), ("fp32", "onnxruntime"),
         ("int8", "onnxruntime")]


def measure(spec: str, precision: str, backend: str, threads: int, batch: int, warmup: int,
            reps: int) -> dict:
    """One (model, precision, backend): full and per-click medians, in this process."""
    import torch
    from bench_model import (  # the inputs bench_model.py times (benchmarks/ is on the path)
        _inputs,
        _median_time,
    )

    from isegm.inference.backends import with_precision
    from isegm.inference.utils import load_is_model
    from isegm.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = load_is_model(spec) if spec.endswith(".pth") else build_model(spec).eval()
    size = int(base.cfg.img_size)
    t0 = time.perf_counter()
    model = with_precision(base, precision, "cpu", backend, size=size,
                           source=spec if spec.endswith(".pth") else None)
    prepare_s = time.perf_counter() - t0
    image, points = _inputs(size, batch)

    def timed(fn) -> list[float]:
        return _median_time(fn, warmup, reps)

    with torch.no_grad():
        full = timed(lambda: model(image, points))
        if hasattr(model, "forward_embedded"):
            emb = model.encode_image(image[:, :3])
            click = timed(lambda: model.forward_embedded(emb, image[:, 3:], points))
        else:
            click = full
    return {"spec": spec, "precision": precision, "backend": backend, "threads": threads,
            "size": size, "full_s": statistics.median(full), "click_s": statistics.median(click),
            "prepare_s": prepare_s}


def _sub(spec: str, precision: str, backend: str, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, __file__, "--one", spec, precision, backend, "--threads", str(threads),
         "--batch", str(ARGS.batch), "--warmup", str(ARGS.warmup), "--reps", str(ARGS.reps)],
        capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from isegm.inference.backends_cli import check_precision, describe_cpu

    wanted = [m.strip() for m in ARGS.models.split(",") if m.strip()]
    models = {k: v for k, v in MODELS.items() if not wanted or v in
              [SHORT.get(w, w) for w in wanted]}
    models.update({w: SHORT.get(w, w) for w in wanted if SHORT.get(w, w) not in MODELS.values()})
    threads = [int(t) for t in ARGS.threads.split(",")]
    print(f"{describe_cpu()}; {os.cpu_count()} CPUs; batch {ARGS.batch}, median of "
          f"{ARGS.reps}", flush=True)
    print("| model | threads | path | full s | x fp32 | per click s | x fp32 |")
    print("|---|---|---|---|---|---|---|")
    for label, spec in models.items():
        for t in threads:
            ref = None
            for precision, backend in PATHS:
                name = f"{precision} {backend}"
                try:
                    check_precision(precision, backend, "cpu")
                except ValueError as e:
                    print(f"| {label} | {t} | {name} | skipped: {str(e).split(';')[0]} "
                          "| | | |", flush=True)
                    continue
                r = _sub(spec, precision, backend, t)
                if "error" in r:
                    print(f"| {label} | {t} | {name} | failed: {r['error']} | | | |", flush=True)
                    continue
                if ref is None and precision == "fp32" and backend == "torch":
                    ref = r
                fx = f"{r['full_s'] / ref['full_s']:.2f}" if ref else "–"
                cx = f"{r['click_s'] / ref['click_s']:.2f}" if ref else "–"
                print(f"| {label} | {t} | {name} | {r['full_s']:.3f} | {fx} | "
                      f"{r['click_s']:.3f} | {cx} |", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="",
                   help="comma-separated: main, mst-448, simpleclick, default, a registered "
                        "architecture or a .pth (default: the four above)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--one", nargs=3, metavar=("MODEL", "PRECISION", "BACKEND"),
                   help=argparse.SUPPRESS)
    ARGS = p.parse_args()
    if ARGS.one:
        spec, precision, backend = ARGS.one
        print(json.dumps(measure(spec, precision, backend, int(ARGS.threads), ARGS.batch,
                                 ARGS.warmup, ARGS.reps)))
    else:
        sys.path.insert(0, str(ROOT))
        main()
