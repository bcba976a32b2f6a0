"""Chooses the graph-cut refinement rule (``isegm/inference/refine.py``) on validation scenes.

The validation scenes are composed like the held-out ``PhotoScenes*`` benchmarks, but from the
*training* photographs and with another seed (``--seed``), plus synthetic scenes of another seed:
no GrabCut image and no held-out photograph is used to choose the rule. ``--heldout`` runs the
registered held-out splits instead (for the README table, after the rule is fixed).

    python benchmarks/refine_validation.py --variants none grabcut \
        "grabcut:prior_radius=0" "grabcut:colour_weight=0.5,smoothness=30" --samples 30

Each variant is ``none`` (the network alone), ``classical`` (OpenCV GrabCut, no network) or
``grabcut[:field=value,...]`` (the refinement with :data:`DEFAULT_RULE`'s fields overridden).
Prints NoC@85/90 and mIoU@1 per split and the mean NoC@90 over the splits. ``--cache FILE``
keeps the network's maps per (image, clicks) between variants and runs (exact; the s/click of
a variant then counts only the network passes it did not share).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from isegm.data.datasets import PhotoScenesEvalDataset, SyntheticEvalDataset  # noqa: E402
from isegm.inference import eval_settings  # noqa: E402
from isegm.inference.evaluation import evaluate_dataset  # noqa: E402
from isegm.inference.grabcut_baseline import GrabCutPredictor  # noqa: E402
from isegm.inference.predictor import NoBRSPredictor  # noqa: E402
from isegm.inference.refine import RefinedPredictor, rule_with  # noqa: E402
from isegm.inference.utils import load_is_model  # noqa: E402
from isegm.utils.config import load_config  # noqa: E402

SCALES = ("small", "medium", "large")


class CachedNetwork:
    """The network predictor with its maps remembered per (image, clicks): every variant
    starts from the same network map for the same clicks, so only the clicks where variants
    differ cost a network pass. Exact: the network's map is a function of the image and the
    click sequence (its previous map included), restored with its states on a hit."""

    def __init__(self, base: NoBRSPredictor, cache: dict) -> None:
        self.base, self.cache = base, cache
        self._image_key = ""

    def set_input_image(self, image: np.ndarray) -> None:
        self.base.set_input_image(image)
        self._image_key = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

    def get_prediction(self, clicker: object, prev_mask: object = None) -> np.ndarray:
        key = (self._image_key, tuple((c.is_positive, *map(float, c.coords[:2]))
                                      for c in clicker.get_clicks()))
        hit = self.cache.get(key)
        if hit is None:
            prob = self.base.get_prediction(clicker, prev_mask)
            hit = self.cache[key] = (prob.copy(), self.base.get_states())
        else:
            self.base.set_states(hit[1])
        return hit[0].copy()


def make_predictor(variant: str, model: torch.nn.Module, cache: dict) -> object:
    name, _, fields = variant.partition(":")
    if name == "classical":
        return GrabCutPredictor()
    settings = eval_settings.resolve_settings(eval_settings.PROJECT, {})
    zoom = eval_settings.make_zoom_in(eval_settings.crop_side(model.cfg.img_size, "", settings),
                                      settings)
    base = CachedNetwork(NoBRSPredictor(model, "cpu", with_flip=True, zoom_in=zoom), cache)
    if name == "none":
        return base
    if name != "grabcut":
        raise SystemExit(f"error: unknown variant {variant!r}")
    return RefinedPredictor(base, rule_with(fields))


def noc(ious: np.ndarray, thr: float, max_clicks: int) -> int:
    hit = np.flatnonzero(ious >= thr)
    return int(hit[0]) + 1 if len(hit) else max_clicks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(REPO / "weights/mst_tiny_photos_bigobjects.pth"))
    parser.add_argument("--variants", nargs="+", default=["none", "grabcut"])
    parser.add_argument("--samples", type=int, default=30, help="scenes per split")
    parser.add_argument("--seed", type=int, default=101, help="seed of the validation scenes")
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--splits", default="photo", help="photo, synthetic or photo,synthetic")
    parser.add_argument("--heldout", action="store_true",
                        help="the registered held-out PhotoScenes splits (reporting only)")
    parser.add_argument("--scales", default=",".join(SCALES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=None,
                        help="file that keeps the network's maps between runs (torch.save)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(REPO / "config.yml")
    model = load_is_model(args.checkpoint, "cpu")
    cache: dict = {}
    if args.cache and Path(args.cache).is_file():
        cache = torch.load(args.cache, weights_only=False)

    datasets = []
    for kind in args.splits.split(","):
        for scale in args.scales.split(","):
            if kind == "photo":
                ds = PhotoScenesEvalDataset(cfg["PHOTOS_PATH"], num_samples=args.samples,
                                            scale=scale, split="val" if args.heldout else "train",
                                            seed=0 if args.heldout else args.seed)
            else:
                ds = SyntheticEvalDataset(num_samples=args.samples, scale=scale,
                                          seed=0 if args.heldout else args.seed)
            datasets.append((f"{kind}-{scale}", ds))

    print(f"| variant | {' | '.join(n + ' NoC85/90 mIoU@1' for n, _ in datasets)} | mean NoC@90 | s/click |")
    for variant in args.variants:
        predictor = make_predictor(variant, model, cache)
        cells, noc90s, clicks, start = [], [], 0, time.perf_counter()
        for _, ds in datasets:
            n85, n90, first = [], [], []
            for result in evaluate_dataset(ds, predictor, max_iou_thr=0.9,
                                           max_clicks=args.max_clicks):
                for ious in result.ious:
                    n85.append(noc(ious, 0.85, args.max_clicks))
                    n90.append(noc(ious, 0.9, args.max_clicks))
                    first.append(float(ious[0]))
                    clicks += len(ious)
            cells.append(f"{np.mean(n85):.2f} / {np.mean(n90):.2f} {100 * np.mean(first):.1f}%")
            noc90s.append(np.mean(n90))
        spc = (time.perf_counter() - start) / max(clicks, 1)
        print(f"| {variant} | {' | '.join(cells)} | {np.mean(noc90s):.2f} | {spc:.3f} |",
              flush=True)
        if args.cache:
            torch.save(cache, args.cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
