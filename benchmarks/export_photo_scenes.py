#!/usr/bin/env python
"""Write photo scenes of one object scale as an ``ImagesDir`` folder (``images/`` + ``masks/``),
the data of the fine-tuning evidence run (README "Train on your own images"):

    python benchmarks/export_photo_scenes.py --scale small --num 300 --out /tmp/small_train

The scenes are those of the held-out evaluation splits (``PhotoScenesSMALL`` ...: one target of
the scale among distractors, 320 px) but composed from the *training* photographs and with
another seed, so a model fine-tuned on them is evaluated on photographs it never saw.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from isegm.data.datasets.photo_scenes import PhotoScenesEvalDataset  # noqa: E402
from isegm.utils.config import load_config  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=("small", "medium", "large"), default="small")
    p.add_argument("--num", type=int, default=300)
    p.add_argument("--seed", type=int, default=12345, help="not 0, the evaluation's seed")
    p.add_argument("--out", required=True)
    p.add_argument("--config-path", default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    photos = load_config(args.config_path)["PHOTOS_PATH"]
    ds = PhotoScenesEvalDataset(photos, num_samples=args.num, seed=args.seed, scale=args.scale,
                                split="train")
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(len(ds)):
        s = ds.get_sample(i)
        stem = f"{args.scale}_{i:04d}"
        cv2.imwrite(str(out / "images" / f"{stem}.png"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / "masks" / f"{stem}.png"), (s.gt_mask(0) > 0).astype("uint8") * 255)
    logging.info("%d scenes written to %s", len(ds), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
