#!/usr/bin/env python
"""Memory of an interactive session on a 48 MP photo: RSS after each click of the Predictor.

A 6000x8000 synthetic image (a textured disk on a gradient), the default model, default
Predictor settings (zoom-in, flip, longest side 800 for the network), 20 clicks alternating
inside and around the disk, then 5 undos. It measures memory, not speed, so it can run on a
busy machine. Before the undo history was bounded, each click kept three full-resolution
float32 maps (3 x 4 B x 48 M = 576 MB per click, about 11 GB after 20 clicks).

    nice -n 10 python benchmarks/bench_predictor_memory.py [--clicks 20] [--size 6000x8000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def make_image(h: int, w: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    image = np.empty((h, w, 3), np.uint8)
    image[..., 0] = (xx / w * 200).astype(np.uint8)
    image[..., 1] = (yy / h * 200).astype(np.uint8)
    image[..., 2] = 90
    cy, cx, r = h * 0.45, w * 0.55, min(h, w) * 0.2
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    image[inside] = (230, 40, 40)
    return image, (cx, cy, r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--size", default="6000x8000", help="HxW of the synthetic image")
    parser.add_argument("--checkpoint", default=None, help="default: the built-in model")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from isegm.annotation import Predictor, set_threads

    threads = set_threads(args.threads)
    h, w = (int(v) for v in args.size.lower().split("x"))
    base_rss, _ = rss_mb()
    predictor = Predictor(args.checkpoint, device="cpu")
    model_rss, _ = rss_mb()
    image, (cx, cy, r) = make_image(h, w)
    predictor.set_image(image)
    image_rss, _ = rss_mb()
    print(f"image {w}x{h} ({h * w / 1e6:.0f} MP), {threads} thread(s); RSS MB: "
          f"python+torch {base_rss:.0f}, +model {model_rss:.0f}, +image set {image_rss:.0f}")

    rng = np.random.default_rng(0)
    clicks = []
    start = time.perf_counter()
    for n in range(1, args.clicks + 1):
        angle = rng.uniform(0, 2 * np.pi)
        positive = n % 2 == 1
        dist = rng.uniform(0, 0.8 * r) if positive else rng.uniform(1.1 * r, 1.5 * r)
        x = float(np.clip(cx + dist * np.cos(angle), 0, w - 1))
        y = float(np.clip(cy + dist * np.sin(angle), 0, h - 1))
        clicks.append((x, y, positive))
        mask, _ = predictor.predict(clicks)
        if n in (1, 2, 5, 10, 15, 20) or n == args.clicks:
            rss, peak = rss_mb()
            print(f"after click {n:2d}: RSS {rss:7.0f} MB (peak {peak:7.0f} MB), undo history "
                  f"{predictor.history_nbytes / 2**20:6.1f} MB, mask {mask.mean():.1%} of the "
                  f"image, {time.perf_counter() - start:6.1f} s so far")
    for _ in range(min(5, len(clicks))):
        clicks.pop()
        predictor.predict(clicks)
    rss, peak = rss_mb()
    print(f"after 5 undos:   RSS {rss:7.0f} MB (peak {peak:7.0f} MB), undo history "
          f"{predictor.history_nbytes / 2**20:6.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
