#!/usr/bin/env python
"""Where the time of one forward pass goes: per part of the model (image encoding, plain ViT
blocks, MST selection, neck + head) and per operator (torch.profiler), batch 1, eval, no grad.

    python benchmarks/profile_model.py [--arch mst_main_vit_base_448] [--size 448] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager

import torch
from timm.models.vision_transformer import Block

from isegm.model import build_model
from isegm.model.vit import MSTBlock

TIMES: dict[str, list[float]] = defaultdict(list)


@contextmanager
def timed(name: str):
    t = time.perf_counter()
    yield
    TIMES[name].append(time.perf_counter() - t)


def instrument(model) -> None:
    """Wrap the parts' methods with timers (the model code itself is not changed)."""
    enc, sel, blk_fwd = model.encode_image, MSTBlock.select, Block.forward
    neck, head = model.neck.forward, model.head.forward

    def encode_image(*a, **k):
        with timed("image encoding (8/16/32-px patch embeddings + pos)"):
            return enc(*a, **k)

    def select(self, *a, **k):
        with timed("MST selection (score blocks, top-k, fusion)"):
            return sel(self, *a, **k)

    def block_forward(self, x, *a, **k):
        with timed("ViT blocks (attention + MLP)"):
            return blk_fwd(self, x, *a, **k)

    def neck_forward(*a, **k):
        with timed("neck + head"):
            return neck(*a, **k)

    def head_forward(*a, **k):
        with timed("neck + head"):
            return head(*a, **k)

    model.encode_image = encode_image
    MSTBlock.select = select
    Block.forward = block_forward
    model.neck.forward, model.head.forward = neck_forward, head_forward


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="mst_main_vit_base_448")
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.arch, img_size=args.size).eval()
    image = torch.rand(1, 4, args.size, args.size)
    points = torch.tensor([[[args.size / 2, args.size / 3, 0], [-1, -1, -1]]])
    with torch.no_grad():
        model(image, points)
        instrument(model)
        TIMES.clear()
        totals = []
        for _ in range(args.reps):
            t = time.perf_counter()
            model(image, points)
            totals.append(time.perf_counter() - t)
        total = statistics.median(totals)
        print(f"{args.arch} at {args.size}: {total:.3f} s per forward (median of {args.reps})\n")
        print("| part | s per forward | share |\n|---|---|---|")
        for name, ts in sorted(TIMES.items(), key=lambda kv: -sum(kv[1])):
            s = sum(ts) / args.reps
            print(f"| {name} | {s:.3f} | {100 * s / total:.0f} % |")
        rest = total - sum(sum(ts) for ts in TIMES.values()) / args.reps
        print(f"| other (click maps, upsampling, glue) | {rest:.3f} | {100 * rest / total:.0f} % |\n")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(image, points)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
