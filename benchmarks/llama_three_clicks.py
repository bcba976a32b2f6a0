#!/usr/bin/env python
"""Three sensible clicks on the GrabCut llama through the command-line tool, IoU against its
ground truth: the "does the default work on a real photograph" check of the README.

Two clicks on the animal (head, neck) and one on the background (the ruins to the right), in
that order, as a person would place them; the mask comes from ``python -m isegm.predict`` run
as a subprocess, exactly as a user runs it, and the IoU is computed here (ground truth 255 =
object). GrabCut is evaluation data only: nothing here trains or selects a model.

    python benchmarks/llama_three_clicks.py [--checkpoint weights/X.pth] \
        [--grabcut ../shared/datasets/GrabCut] [--refine auto|grabcut|none]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
#: (x, y, positive) in the 513x371 image: head, neck, background.
CLICKS = "265,170,+ 195,290,+ 420,290,-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model (default: the built-in one)")
    parser.add_argument("--grabcut", default=str(ROOT.parent / "shared" / "datasets" / "GrabCut"))
    parser.add_argument("--refine", default=None, choices=("auto", "grabcut", "none"),
                        help="passed to isegm.predict (default: its own, auto)")
    args = parser.parse_args()
    root = Path(args.grabcut)
    image, truth = root / "data_GT" / "llama.bmp", root / "boundary_GT" / "llama.bmp"
    if not image.is_file() or not truth.is_file():
        parser.error(f"GrabCut llama not found under {root} (data_GT/ and boundary_GT/llama.bmp)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "llama_mask.png"
        cmd = [sys.executable, "-m", "isegm.predict", "--cpu", "--image", str(image),
               "--clicks", CLICKS, "--output", str(out)]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        if args.refine:
            cmd += ["--refine", args.refine]
        subprocess.run(cmd, check=True, cwd=ROOT)
        mask = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE) > 127
    gt = cv2.imread(str(truth), cv2.IMREAD_GRAYSCALE)
    valid = gt != 128
    obj = gt == 255
    iou = float((mask & obj & valid).sum() / max(1, ((mask | obj) & valid).sum()))
    print(f"llama, clicks {CLICKS!r}: IoU {iou:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
