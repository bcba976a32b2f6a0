#!/usr/bin/env python
"""Evaluation-loop throughput: clicks per second of ``evaluate_model.py``'s loop on GrabCut.

For each model (random weights unless ``--checkpoint``: speed does not depend on them) the
script's own code runs: the NoBRS predictor of ``evaluate_model.build_predictor`` (ZoomIn to the
inference size, flip, no cascade, ``--precision`` autocast) driven by ``evaluate_model.run_pair``
(lockstep batches of ``--batch-size`` objects, click simulation, thresholding, IoU, progress
bar, one fsync'ed jsonl line per sample). Every click is made (target IoU > 1).

The network time is the time spent in the predictor's forward runner (batched forward: padding,
image encoding, click-dependent forward, logits crop, autocast); everything else in the loop
(image loading, click simulation by distance transform, ZoomIn crop/resize and its inverse, flip
averaging, sigmoid, IoU, writing results) is "outside the network". ``speed-up`` is clicks/s
against batch 1 of the same model, threads and precision.

Precision drift: for bf16/fp16 rows, the same objects' IoU curves are compared with the fp32
run at the same batch size: NoC@85/90 of both, the largest |IoU| difference and how many
objects got other clicks (``--checkpoint`` gives trained weights, where drift means something;
with random weights it only shows that the numbers move).

    python benchmarks/bench_eval.py [--images 3] [--clicks 5] [--threads 2] [--models tiny,vitb]
        [--batch-size 1,16] [--precision fp32,bf16] [--device cpu|cuda] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import copy
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


def _model(ev, key: str, checkpoint: str | None, device):
    """(label, model, size): a checkpoint, or a named architecture with random weights."""
    import torch

    from isegm.model.build import build_model

    if checkpoint:
        model = ev.load_is_model(Path(checkpoint), device)
        return Path(checkpoint).stem, model, int(model.cfg.img_size)
    arch, size = MODELS[key]
    torch.manual_seed(0)
    model = build_model(arch).eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return f"{key} ({arch})", model, size


def bench_one(ev, model_spec: tuple, grabcut: Path, images: int, clicks: int, threads: int,
              batch: int, precision: str, device_name: str) -> dict:
    import torch

    from isegm.inference.results import SampleLog

    torch.set_num_threads(threads)
    label, model, size = model_spec
    device = torch.device(device_name)
    flags = ["--inference_size", str(size), "--batch-size", str(batch), "--precision", precision]
    flags += ["--cpu"] if device.type == "cpu" else ["--gpus", str(device.index or 0)]
    args = ev.parse_args(["--iou-analysis", "--n-clicks", str(clicks), *flags])
    dataset = ev.get_eval_dataset("GrabCut", {}, path_override=grabcut)
    from isegm.inference.backends import with_precision

    # bf16/fp16 cast the Linear weights of the model they get: a copy, the next row needs fp32
    net = with_precision(model if precision == "fp32" else copy.deepcopy(model), precision,
                         device)
    predictor = ev.build_predictor(net, device, args, "GrabCut")

    net_time = [0.0]
    calls = [0]
    rows = [0]
    runner = predictor.forward_runner

    def timed_runner(requests):
        t = time.perf_counter()
        out = runner(requests)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        net_time[0] += time.perf_counter() - t
        calls[0] += 1
        rows[0] += sum(r.rows for r in requests)
        return out

    predictor.forward_runner = timed_runner
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: one click of a full batch (allocator, kernels, first calls), not counted
        warm = ev.parse_args(["--iou-analysis", "--n-clicks", "1", *flags])
        with SampleLog(Path(tmp) / "warm.jsonl", resume=False) as log:
            ev.run_pair(dataset, predictor, list(range(min(batch, images))), log, warm)
        net_time[0], calls[0], rows[0] = 0.0, 0, 0
        with SampleLog(Path(tmp) / "bench.jsonl", resume=False) as log:
            start = time.perf_counter()
            ev.run_pair(dataset, predictor, list(range(images)), log, args)
            total = time.perf_counter() - start
            records = [log.records[i] for i in sorted(log.records)]
    ious = [x for r in records for x in r.ious]
    obj_clicks = [c for r in records for c in r.clicks]
    return {"model": label, "size": size, "threads": threads, "batch": batch,
            "precision": precision, "images": images, "clicks": sum(len(x) for x in ious),
            "total_s": total, "net_s": net_time[0], "net_calls": calls[0],
            "rows_per_call": rows[0] / max(calls[0], 1), "ious": ious, "obj_clicks": obj_clicks}


def drift(row: dict, ref: dict, clicks: int) -> str:
    """NoC@85/90 of ``ref`` (fp32) -> ``row``, max |dIoU|, objects with other clicks."""
    import numpy as np

    from isegm.inference.metrics import compute_noc_metric

    a = compute_noc_metric(ref["ious"], [0.85, 0.90], max_clicks=clicks).noc
    b = compute_noc_metric(row["ious"], [0.85, 0.90], max_clicks=clicks).noc
    diff = max(float(np.abs(x - y).max()) for x, y in zip(ref["ious"], row["ious"]))
    moved = sum(x != y for x, y in zip(ref["obj_clicks"], row["obj_clicks"]))
    return (f"NoC@85 {a[0]:.2f}->{b[0]:.2f}, NoC@90 {a[1]:.2f}->{b[1]:.2f}, "
            f"max|dIoU| {diff:.2e}, {moved}/{len(ref['ious'])} objects other clicks")


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--clicks", type=int, default=5)
    p.add_argument("--threads", default="2", help="comma-separated thread counts to try")
    p.add_argument("--models", default="tiny,vitb", help="comma-separated: tiny, vitb")
    p.add_argument("--checkpoint", default=None,
                   help="benchmark this checkpoint (trained weights) instead of --models")
    p.add_argument("--batch-size", default="1", help="comma-separated lockstep batch sizes")
    p.add_argument("--precision", default="fp32",
                   help="comma-separated: fp32, bf16, fp16 (fp16 needs CUDA)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
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
    import torch

    from isegm.inference.backends_cli import check_precision

    try:
        batches, threads = _ints(a.batch_size), _ints(a.threads)
        if not batches or min(batches) < 1 or not threads or min(threads) < 1:
            raise ValueError("--batch-size and --threads need integers >= 1")
        device = torch.device(a.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available")
        precisions = [x.strip() for x in a.precision.split(",") if x.strip()]
        for prec in precisions:
            check_precision(prec, "torch", device.type)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    load0 = os.getloadavg()[0]
    keys = ["checkpoint"] if a.checkpoint else [m.strip() for m in a.models.split(",")]
    rows = []
    for key in keys:
        spec = _model(ev, key, a.checkpoint, device)
        for t in threads:
            for prec in precisions:
                for b in batches:
                    rows.append(bench_one(ev, spec, grabcut, a.images, a.clicks, t, b, prec,
                                          str(device)))
        del spec
    print(f"GrabCut, {a.images} images x {a.clicks} clicks, flip on, no cascade, {device}; "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = ("model", "input", "thr", "prec", "batch", "rows/fwd", "clicks", "loop s",
            "clicks/s", "speed-up", "net s", "outside net", "outside ms/click")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    base = {(r["model"], r["threads"], r["precision"]): r for r in rows if r["batch"] == 1}
    for r in rows:
        outside = r["total_s"] - r["net_s"]
        rate = r["clicks"] / r["total_s"]
        b1 = base.get((r["model"], r["threads"], r["precision"]))
        speed = f"{rate / (b1['clicks'] / b1['total_s']):.2f}x" if b1 else "-"
        print(f"| {r['model']} | {r['size']} | {r['threads']} | {r['precision']} | "
              f"{r['batch']} | {r['rows_per_call']:.1f} | {r['clicks']} | {r['total_s']:.2f} | "
              f"{rate:.2f} | {speed} | {r['net_s']:.2f} | {outside / r['total_s']:.1%} | "
              f"{1000 * outside / max(r['clicks'], 1):.1f} |")
    fp32 = {(r["model"], r["threads"], r["batch"]): r for r in rows if r["precision"] == "fp32"}
    for r in rows:
        ref = fp32.get((r["model"], r["threads"], r["batch"]))
        if r["precision"] != "fp32" and ref is not None:
            print(f"drift {r['model']} batch {r['batch']} {r['precision']} vs fp32: "
                  f"{drift(r, ref, a.clicks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
