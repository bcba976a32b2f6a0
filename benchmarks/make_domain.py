#!/usr/bin/env python
"""Write a synthetic domain the built-in default has never seen, as ``ImagesDir`` folders, for
the fine-tuning evidence run (README "Train on your own images"):

    python benchmarks/make_domain.py cells --out datasets/cells --train 300 --heldout 20

``cells``: grey fluorescence-microscopy-like fields, 256 px: 6 to 16 irregular cells per image,
most of them in clusters where neighbours touch and are parted only by a faint darker seam, with
per-cell brightness and inner texture (nucleus-like spots), unlabelled debris and out-of-focus
blobs, uneven illumination, blur, and signal-dependent plus read-out noise. A lab that counts
nuclei has images like these; the default, trained on photo scenes, has seen none.

Writes ``<out>/train`` and ``<out>/heldout``, each ``images/<stem>.png`` (8-bit grey) and
``masks/<stem>.png`` (label map: cell *k* = value *k*). Every image is a pure function of
``(seed, split, index)``; the two splits draw from different seed streams, so no held-out image
is a training image.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger("make_domain")

SIZE = 256
#: cells smaller than this (pixels, after neighbours and the border took their share) are not
#: drawn as cells, so every labelled object is one a person would click
MIN_CELL_AREA = 150
_SPLITS = {"train": 0, "heldout": 1}


def _cell_radii(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: mean radius, elongation and orientation."""
    return rng.uniform(13, 28, n), rng.uniform(1.0, 1.5, n), rng.uniform(0, np.pi, n)


def _cell_centres(rng: np.random.Generator, n: int) -> np.ndarray:
    """Centres, most of them in 1-3 clusters (touching neighbours), some on their own."""
    clusters = rng.uniform(40, SIZE - 40, (int(rng.integers(1, 4)), 2))
    centres = []
    for _ in range(n):
        if rng.random() < 0.75:
            c = clusters[rng.integers(len(clusters))] + rng.normal(0, 26, 2)
        else:
            c = rng.uniform(10, SIZE - 10, 2)
        centres.append(c)
    return np.clip(np.array(centres), 0, SIZE - 1)


def _cell_labels(rng: np.random.Generator) -> np.ndarray:
    """The label map: each pixel belongs to the cell whose irregular outline, scaled to it,
    reaches it soonest (touching cells share a boundary, as segmented nuclei do)."""
    n = int(rng.integers(6, 17))
    centres = _cell_centres(rng, n)
    radius, elong, angle = _cell_radii(rng, n)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    best = np.full((SIZE, SIZE), np.inf, np.float32)
    labels = np.zeros((SIZE, SIZE), np.int32)
    for i in range(n):
        dx, dy = xx - centres[i, 0], yy - centres[i, 1]
        c, s = np.cos(angle[i]), np.sin(angle[i])
        u, v = (c * dx + s * dy) / elong[i], -s * dx + c * dy
        theta = np.arctan2(v, u)
        wobble = np.ones_like(theta)
        for k in (2, 3, 4, 5):  # a lumpy, not elliptical, outline
            wobble += rng.uniform(0, 0.07) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        d = np.sqrt(u * u + v * v) / (radius[i] * wobble)
        inside = (d < 1.0) & (d < best)
        best[inside], labels[inside] = d[inside], i + 1
    out = np.zeros((SIZE, SIZE), np.uint8)
    kept = 0
    for i in range(1, n + 1):
        # the largest connected piece only: a cell cut in two by its neighbours keeps one piece
        count, comp, stats, _ = cv2.connectedComponentsWithStats((labels == i).astype(np.uint8))
        if count < 2:
            continue
        j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[j, cv2.CC_STAT_AREA] >= MIN_CELL_AREA:
            kept += 1
            out[comp == j] = kept
    return out


def _smooth_field(rng: np.random.Generator, scale: float) -> np.ndarray:
    """A smooth random field in [-1, 1] with features of about ``scale`` pixels."""
    small = rng.normal(0, 1, (max(2, int(SIZE / scale)),) * 2).astype(np.float32)
    field = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    return field / (np.abs(field).max() + 1e-6)


def render_cells(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One field of view: (8-bit grey image, uint8 label map)."""
    labels = _cell_labels(rng)
    n = int(labels.max())
    img = np.full((SIZE, SIZE), rng.uniform(0.06, 0.18), np.float32)
    # out-of-focus blobs and debris: bright things that are not cells
    for _ in range(int(rng.integers(1, 4))):
        blob = np.zeros_like(img)
        cv2.circle(blob, tuple(int(v) for v in rng.uniform(0, SIZE, 2)),
                   int(rng.uniform(15, 35)), 1.0, -1)
        img += rng.uniform(0.05, 0.18) * cv2.GaussianBlur(blob, (0, 0), rng.uniform(6, 12))
    for _ in range(int(rng.integers(3, 12))):
        cv2.circle(img, tuple(int(v) for v in rng.uniform(0, SIZE, 2)),
                   int(rng.integers(1, 4)), float(rng.uniform(0.3, 0.8)), -1)
    # cells: own brightness, brighter towards the middle, a textured inside with a few spots
    texture = _smooth_field(rng, 6)
    dist = cv2.distanceTransform((labels > 0).astype(np.uint8), cv2.DIST_L2, 3)
    for k in range(1, n + 1):
        cell = labels == k
        depth = dist[cell] / (dist[cell].max() + 1e-6)
        img[cell] = rng.uniform(0.3, 0.8) * (0.75 + 0.25 * depth) * (1 + 0.15 * texture[cell])
        ys, xs = np.nonzero(cell)
        for _ in range(int(rng.integers(0, 4))):
            j = int(rng.integers(len(ys)))
            spot = np.zeros_like(img)
            cv2.circle(spot, (int(xs[j]), int(ys[j])), int(rng.integers(2, 5)), 1.0, -1)
            img += cell * spot * rng.uniform(-0.2, 0.25)
    # the seam between touching cells: a thin, faint valley
    grow = cv2.dilate(labels, np.ones((3, 3), np.uint8))
    shrink = cv2.erode(np.where(labels > 0, labels, 255).astype(np.uint8), np.ones((3, 3), np.uint8))
    seam = (labels > 0) & ((grow > labels) | (shrink < labels))  # a neighbour of another id
    img[seam] *= rng.uniform(0.55, 0.85)
    # optics and camera: uneven illumination, blur, shot and read-out noise, gain
    img *= 1.0 + 0.35 * _smooth_field(rng, 128)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.7, 1.6))
    img = np.clip(img, 0, None)
    img += rng.normal(0, 1, img.shape).astype(np.float32) * (
        rng.uniform(0.02, 0.06) * np.sqrt(img) + rng.uniform(0.01, 0.03))
    img = np.clip(img * rng.uniform(0.8, 1.2), 0, 1) ** rng.uniform(0.8, 1.2)
    return (img * 255 + 0.5).astype(np.uint8), labels


DOMAINS: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "cells": render_cells,
}


def write_split(domain: str, out: Path, split: str, num: int, seed: int) -> int:
    """Write ``num`` images of one split; returns the number of objects written."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    objects = 0
    for i in range(num):
        rng = np.random.default_rng([seed, _SPLITS[split], i])
        image, labels = DOMAINS[domain](rng)
        stem = f"{domain}_{split}_{i:04d}"
        cv2.imwrite(str(out / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(out / "masks" / f"{stem}.png"), labels)
        objects += int(labels.max())
    logger.info("%s: %d images, %d objects -> %s", split, num, objects, out)
    return objects


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("domain", choices=sorted(DOMAINS))
    p.add_argument("--out", required=True, help="writes OUT/train and OUT/heldout")
    p.add_argument("--train", type=int, default=300, help="training images")
    p.add_argument("--heldout", type=int, default=20, help="held-out images")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.train < 0 or args.heldout < 0:
        p.error("--train and --heldout must be >= 0")
    out = Path(args.out)
    for split, num in (("train", args.train), ("heldout", args.heldout)):
        write_split(args.domain, out / split, split, num, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
