#!/usr/bin/env python
"""Training throughput on this machine: samples/s of a full training step (iterative click
simulation + forward + backward + AdamW step, batch 2, 448, CPU) for MST ``main``, MST
``mst-448`` and our plain ViT-B, next to the data-loading throughput with 2 workers (synthetic
scenes with the 448 recipe's augmentation and click sampler), and peak memory.

    python benchmarks/bench_train.py [--steps 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = {"plain ViT-B": "simpleclick_vit_base_448", "MST main": "mst_main_vit_base_448",
         "MST mst-448": "mst_448_vit_base_448"}


def _datasets(size: int):
    from isegm.data.datasets.synthetic import SyntheticMultiScaleDataset
    from isegm.data.transforms import train_augmentator
    from isegm.engine.recipes import RECIPE_448, reference_points_sampler

    return SyntheticMultiScaleDataset(num_samples=1000, image_size=size, seed=0,
                                      augmentator=train_augmentator(size, **RECIPE_448),
                                      points_sampler=reference_points_sampler(), min_object_area=8)


def train_step_rate(arch: str, size: int, steps: int, threads: int) -> dict:
    """Median time of full trainer steps (the trainer's own ``train_step``)."""
    import tempfile

    import torch

    from isegm.engine.trainer import LossConfig, TrainConfig, Trainer
    from isegm.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(arch, img_size=size)
    data = _datasets(size)
    loss = LossConfig(token_weight=1.0, score_weight=1.0) if arch.startswith("mst") else LossConfig()
    cfg = TrainConfig(batch_size=2, workers=0, lr=1e-5, image_dump_interval=0, max_num_next_clicks=3)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, cfg, loss, data, None, Path(tmp), "cpu")
        batches = [torch.utils.data.default_collate([data[(0, 2 * i)], data[(0, 2 * i + 1)]])
                   for i in range(steps + 1)]
        times = []
        for i, batch in enumerate(batches):
            trainer.step_in_epoch = 0  # same click-count draw every step: comparable timings
            t = time.perf_counter()
            trainer.train_step(batch)
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"arch": arch, "step_s": med, "samples_per_s": 2 / med,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def loader_rate(size: int, workers: int, batches: int) -> float:
    import torch

    data = _datasets(size)
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=workers, shuffle=False)
    it = iter(loader)
    next(it)  # worker start-up
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return 2 * batches / (time.perf_counter() - t)


def main(args) -> None:
    rows = []
    for label, arch in ARCHS.items():
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run([sys.executable, __file__, "--one", arch, "--steps", str(args.steps),
                               "--threads", str(args.threads)], capture_output=True, text=True,
                              env=env, cwd=ROOT)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((label, r))
        print(f"{label:<12} train step {r['step_s']:.2f} s = {r['samples_per_s']:.2f} samples/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    rate = loader_rate(448, 2, args.loader_batches)
    print(f"data loading, 2 workers, 448 px: {rate:.1f} samples/s", flush=True)
    plain = rows[0][1]["step_s"]
    lines = ["<!-- bench_train:start -->", "",
             f"Command: `python benchmarks/bench_train.py {' '.join(sys.argv[1:])}`; {args.threads} "
             f"threads, batch 2, 448 px, full trainer step (click simulation with 0-3 extra clicks "
             f"as drawn for step 0, forward, backward, AdamW).", "",
             "| model | step s | samples/s | x plain ViT | peak RSS MB |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {r['step_s']:.2f} | {r['samples_per_s']:.2f} | {r['step_s'] / plain:.2f} | "
              f"{r['peak_rss_mb']:.0f} |" for label, r in rows]
    lines += ["", f"Data loading (2 workers, synthetic scenes, 448 recipe augmentation + sampler): "
                  f"{rate:.1f} samples/s.", "", "<!-- bench_train:end -->"]
    _write(lines)


def _write(lines: list[str]) -> None:
    import re

    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    block = "\n".join(lines)
    if "<!-- bench_train:start -->" in text:
        text = re.sub(r"<!-- bench_train:start -->.*<!-- bench_train:end -->", block, text, flags=re.S)
    else:
        text += "\n## Training speed (`benchmarks/bench_train.py`)\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--loader-batches", type=int, default=30)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(train_step_rate(args.one, 448, args.steps, args.threads)))
    else:
        main(args)
