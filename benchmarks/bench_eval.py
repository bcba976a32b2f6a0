#!/usr/bin/env python
"""Evaluation-loop throughput: clicks per second of ``evaluate_model.py``'s loop on GrabCut.

For each model (random weights: speed does not depend on them) the script's own code runs: the
NoBRS predictor of ``evaluate_model.build_predictor`` (ZoomIn to the inference size, flip,
no cascade) driven by ``evaluate_model.run_pair`` (click simulation, thresholding, IoU,
progress bar, one fsync'ed jsonl line per sample). Every click is made (target IoU > 1).

The network time is the time spent inside ``NoBRSPredictor._forward`` (padding, image encoding,
click-dependent forward, logits crop); everything else in the loop (image loading, click
simulation by distance transform, ZoomIn crop/resize and its inverse, flip averaging, sigmoid,
IoU, writing results) is "outside the network".

    python benchmarks/bench_eval.py [--images 3] [--clicks 5] [--threads 2] [--models tiny,vitb]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"tiny": ("mst_tiny_224", 224), "vitb": ("mst_main_vit_base_448", 448)}


def _script():
    spec = importlib.util.spec_from_file_location("evaluate_model", ROOT / "evaluate_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_one(ev, key: str, grabcut: Path, images: int, clicks: int, threads: int) -> dict:
    import torch

    from isegm.inference.results import SampleLog
    from isegm.model.build import build_model

    torch.set_num_threads(threads)
    arch, size = MODELS[key]
    torch.manual_seed(0)
    model = build_model(arch).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    args = ev.parse_args(["--iou-analysis", "--n-clicks", str(clicks), "--inference_size",
                          str(size), "--cpu"])
    dataset = ev.get_eval_dataset("GrabCut", {}, path_override=grabcut)
    predictor = ev.build_predictor(model, torch.device("cpu"), args, "GrabCut")

    net_time = [0.0]
    calls = [0]
    forward = predictor._forward

    def timed_forward(*a, **kw):
        t = time.perf_counter()
        out = forward(*a, **kw)
        net_time[0] += time.perf_counter() - t
        calls[0] += 1
        return out

    predictor._forward = timed_forward
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: one sample, one click (allocator, first-call overheads), not counted
        warm = ev.parse_args(["--iou-analysis", "--n-clicks", "1", "--inference_size", str(size)])
        with SampleLog(Path(tmp) / "warm.jsonl", resume=False) as log:
            ev.run_pair(dataset, predictor, [0], log, warm)
        net_time[0], calls[0] = 0.0, 0
        with SampleLog(Path(tmp) / "bench.jsonl", resume=False) as log:
            start = time.perf_counter()
            ev.run_pair(dataset, predictor, list(range(images)), log, args)
            total = time.perf_counter() - start
            n_clicks = sum(len(x) for r in log.records.values() for x in r.ious)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return {"model": f"{key} ({arch})", "size": size, "params_m": params, "threads": threads,
            "images": images, "clicks": n_clicks, "total_s": total, "net_s": net_time[0],
            "net_calls": calls[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--clicks", type=int, default=5)
    p.add_argument("--threads", default="2", help="comma-separated thread counts to try")
    p.add_argument("--models", default="tiny,vitb", help="comma-separated: tiny, vitb")
    p.add_argument("--grabcut", default=os.environ.get(
        "GRABCUT_PATH", str(Path(os.environ.get("ISEGM_SHARED", ROOT.parent / "shared"))
                            / "datasets" / "GrabCut")))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    ev = _script()
    grabcut = Path(a.grabcut)
    if not grabcut.is_dir():
        print(f"error: GrabCut not found at {grabcut} (--grabcut)", file=sys.stderr)
        return 2
    load0 = os.getloadavg()[0]
    rows = [bench_one(ev, m.strip(), grabcut, a.images, a.clicks, int(t))
            for m in a.models.split(",") for t in a.threads.split(",")]
    print(f"GrabCut, {a.images} images x {a.clicks} clicks, flip on, no cascade, CPU; "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = ("model", "input", "params", "thr", "clicks", "loop s", "clicks/s", "net s",
            "outside net", "outside ms/click")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        outside = r["total_s"] - r["net_s"]
        print(f"| {r['model']} | {r['size']} | {r['params_m']:.1f}M | {r['threads']} | "
              f"{r['clicks']} | {r['total_s']:.2f} | {r['clicks'] / r['total_s']:.2f} | "
              f"{r['net_s']:.2f} | {outside / r['total_s']:.1%} | "
              f"{1000 * outside / max(r['clicks'], 1):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
