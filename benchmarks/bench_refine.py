"""Time of the graph-cut refinement per click, outside the network (issue 21 target: <= 150 ms
at 1 thread for a 0.5 Mpx image).

    python benchmarks/bench_refine.py [--image ../shared/datasets/GrabCut/data_GT/llama.bmp]

The image is resized to 0.5 Mpx (its aspect kept); the network map of the built-in default for
three clicks is computed once, then :meth:`GraphCutRefiner.refine` is timed alone (median of
``--repeats``) for 1, 2 and 3 clicks, and :meth:`GraphCutRefiner.set_image` (once per image).
Run it on an idle machine; the CPU time of the process is printed too (on a busy machine it
stays close to the idle wall time, while the wall time grows with the load).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from isegm.annotation import Predictor, read_image  # noqa: E402
from isegm.inference.clicker import Click  # noqa: E402
from isegm.inference.refine import GraphCutRefiner, rule_with  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=str(REPO.parent / "shared/datasets/GrabCut/data_GT/"
                                                             "llama.bmp"))
    parser.add_argument("--megapixels", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rule", default="",
                        help="fields of the rule to change, e.g. first_click=gmm,iterations=2 "
                             "(default: the rule itself)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    image = read_image(args.image)
    scale = (args.megapixels * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_CUBIC)
    h, w = image.shape[:2]
    # three clicks: the centre, a point left of it, one background click near the border
    clicks = [(w * 0.5, h * 0.5, True), (w * 0.4, h * 0.55, True), (w * 0.05, h * 0.05, False)]
    predictor = Predictor(None, device="cpu", refine="none")
    predictor.set_image(image)
    print(f"image {Path(args.image).name} at {w}x{h} ({w * h / 1e6:.2f} Mpx), "
          f"{args.threads} thread(s)")

    refiner = GraphCutRefiner(rule_with(args.rule))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        refiner.set_image(image)
        times.append(time.perf_counter() - start)
    print(f"set_image (once per image): {1000 * statistics.median(times):.1f} ms")
    for n in (1, 2, 3):
        _, prob = predictor.predict(clicks[:n])
        objs = [Click(is_positive=p, coords=(y, x)) for x, y, p in clicks[:n]]
        times, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            out = refiner.refine(prob, objs)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(f"refine, {n} click(s): median {1000 * statistics.median(times):.1f} ms "
              f"(CPU time {1000 * statistics.median(cpu):.1f} ms), max "
              f"{1000 * max(times):.1f} ms ({int((out > 0.5).sum())} mask pixels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
