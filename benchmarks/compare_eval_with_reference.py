#!/usr/bin/env python
"""Click-by-click comparison of this project's evaluation with the ORIGINAL code (issue 11).

    python benchmarks/compare_eval_with_reference.py --models main,mst-448,simpleclick \\
        --sizes 224,448,672 --images 2 --clicks 3 [--weights vitb|small] [--json out.json]

Both sides evaluate the same checkpoint on the same GrabCut images with the same deterministic
click rule (the standard protocol: the farthest error pixel), for a fixed number of clicks:

* ours: ``evaluate_model.build_predictor`` with the checkpoint family's evaluation settings
  (``isegm.inference.eval_settings``) at crop side S, the project's ``Clicker``;
* the original: its own ``load_is_model``, ``interpolate_pos_embed_inference`` to S (and
  ``backbone.img_size = S`` on MST, as its ``evaluate_model.py`` does), ``get_predictor('NoBRS')``
  with ``zoom_in_params = {'skip_clicks': -1, 'target_size': (S, S)}`` and its own ``Clicker``,
  whose random top-50 draw (MST) is replaced by the maximum, i.e. the same standard rule. It
  runs in a subprocess (``--ref-python``, default this interpreter) from the trees that
  ``../shared/ref_runner/setup.sh`` extracts into ``$REF_ROOT`` (default /tmp/mstref); nothing of
  the original is imported into this process. ``model.eval()`` is called on the original too (on
  ``main`` its script does it only with ``--eval-ritm``; dropout would make it random).

S = 672 stands for the ``main`` branch's DAVIS crop (448 x 1.5). Images: the GrabCut samples with
the smallest object box, so that ZoomIn crops after the first click. Weights: ``vitb`` = the
published ViT-B architectures (``shared/parity/vitb_<branch>_config.pt``) with the
``fill.py`` weights, saved once in the original's checkpoint format under ``--work-dir``;
``small`` = the reduced-width reference checkpoints ``shared/parity/small_<branch>.pth``.

Reports, per model and size: whether the clicks (position and sign) and the crops are identical
at every click, the largest |p_ours - p_original| over all pixels and clicks, and on how many
clicks the crop was active. Exit status 1 if any clicks differ or max |dp| exceeds --tol.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ISEGM_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "parity"
REF_ROOT = Path(os.environ.get("REF_ROOT", "/tmp/mstref"))
BRANCH_TREE = {"main": "main", "mst-448": "mst-448", "simpleclick": "simpleclick"}
THRESH = 0.49


# ----------------------------------------------------------------------------- shared loop
def click_loop(predictor, clicker_cls, image, gt, n_clicks, roi_of):
    """The NoC loop without early stop: per click the click made, the ROI used, the probs."""
    clicker = clicker_cls(gt_mask=gt)
    pred_mask = np.zeros(gt.shape, dtype=bool)
    predictor.set_input_image(image)
    clicks, rois, probs = [], [], []
    for _ in range(n_clicks):
        clicker.make_next_click(pred_mask)
        p = predictor.get_prediction(clicker)
        pred_mask = p > THRESH
        c = clicker.get_clicks()[-1]
        clicks.append((int(c.coords[0]), int(c.coords[1]), int(bool(c.is_positive))))
        rois.append(roi_of(predictor))
        probs.append(np.asarray(p, dtype=np.float32))
    return clicks, rois, probs


# -------------------------------------------------------------------------- original side
def focus_on_positive_clicks(torch, model, image: np.ndarray) -> None:
    """Makes a random-weight model predict a compact blob around a positive click, so that
    ZoomIn crops (its ROI is the box of the prediction > 0.5): the positive-disk channel of the
    click embedding is scaled by k (the smallest of 10..1000 that gives a blob under a third of
    the side), then the output layer's sign and bias put the threshold half-way between the
    blob and the median logit. Elsewhere the logits keep their image-dependent variation."""
    import torch.nn.functional as F

    rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = torch.cat([F.interpolate(rgb, size=(448, 448), mode="bilinear"),
                   torch.zeros(1, 1, 448, 448)], 1)
    pts = torch.tensor([[[224.0, 224.0, 0.0], [-1.0, -1.0, -1.0]]])
    w = model.patch_embed_coords.proj.weight
    base = w.detach().clone()
    with torch.no_grad():
        for k in (10, 30, 100, 300, 1000):
            w.copy_(base)
            w[:, 1] *= k
            lg = model(x, pts)["instances"][0, 0]
            spike, rest = float(lg[220:229, 220:229].mean()), float(lg.median())
            sgn, mid = (1.0 if spike > rest else -1.0), (spike + rest) / 2
            ys, xs = torch.nonzero(sgn * (lg - mid) > 0, as_tuple=True)
            extent = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
            if extent <= 448 // 3:
                break
        conv = model.head.conv_seg
        conv.weight.mul_(sgn)
        conv.bias.mul_(sgn).sub_(sgn * mid)
    print(f"focus: k={k}, blob extent {extent} px of 448", file=sys.stderr)


def ref_side(a: argparse.Namespace) -> None:
    """Runs inside the subprocess: the original code only."""
    tree = REF_ROOT / BRANCH_TREE[a.branch]
    for p in (REF_ROOT / "pydeps", REF_ROOT / "stubs", tree):
        sys.path.insert(0, str(p))
    sys.path.append(str(PARITY))
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(a.threads)
    import isegm  # the original package

    if Path(isegm.__path__[0]).resolve() != (tree / "isegm").resolve():
        sys.exit(f"reference isegm imported from {isegm.__path__[0]}, expected {tree}")
    if a.make_ckpt:
        from isegm.utils.serialization import load_model

        if a.weights == "vitb":
            from fill import fill_state_dict, read_keys_tsv

            cfg = torch.load(PARITY / f"vitb_{a.branch}_config.pt", map_location="cpu",
                             weights_only=False)
            sd = fill_state_dict(read_keys_tsv(PARITY / f"vitb_{a.branch}_keys.tsv"))
        else:
            src = torch.load(PARITY / f"small_{a.branch}.pth", map_location="cpu",
                             weights_only=False)
            cfg, sd = src["config"], src["state_dict"]
        model = load_model(cfg, False)
        model.load_state_dict(sd, strict=True)
        model.eval()
        focus_on_positive_clicks(torch, model, np.load(a.inputs)["image0"])
        sd = {k: v.float() for k, v in model.state_dict().items()}
        torch.save({"state_dict": sd, "config": model._config}, a.make_ckpt)
        return
    np.random.choice = lambda values, *args, **kw: max(values)  # MST's top-50 draw -> the max
    from isegm.inference.clicker import Clicker
    from isegm.inference.predictors import get_predictor
    from isegm.model.modeling.pos_embed import interpolate_pos_embed_inference
    from isegm.utils.serialization import load_model

    # what its inference.utils.load_single_is_model does (that module imports the training
    # datasets, which need an older albumentations)
    ckpt = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    model = load_model(ckpt["config"], False)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.eval()
    size = (a.size, a.size)
    interpolate_pos_embed_inference(model.backbone, size, "cpu")
    if a.branch != "simpleclick":
        model.backbone.img_size = size
    zoom = {"skip_clicks": -1, "target_size": size}
    params = {"cascade_step": 1, "cascade_adaptive": False, "cascade_clicks": 1}
    if a.branch == "simpleclick":
        params = {}
    predictor = get_predictor(model, "NoBRS", "cpu", prob_thresh=THRESH,
                              predictor_params=params, zoom_in_params=zoom)
    data = np.load(a.inputs)
    out = {}
    with torch.no_grad():
        for i in range(int(data["n"])):
            t0 = time.perf_counter()
            clicks, rois, probs = click_loop(
                predictor, Clicker, data[f"image{i}"], data[f"gt{i}"], a.clicks,
                lambda pr: tuple(int(v) for v in pr.zoom_in._object_roi)
                if pr.zoom_in._object_roi is not None else None)
            out[f"clicks{i}"], out[f"rois{i}"] = np.array(clicks), np.array(rois)
            out[f"probs{i}"] = np.stack(probs)
            out[f"seconds{i}"] = time.perf_counter() - t0
    np.savez_compressed(a.out, **out)


# ------------------------------------------------------------------------------- our side
def our_side(ckpt: Path, size: int, data: dict, n_clicks: int, argv: tuple[str, ...] = ()) -> dict:
    import torch

    sys.path.insert(0, str(REPO))
    import evaluate_model as ev
    from isegm.inference import eval_settings as es
    from isegm.inference.clicker import Clicker
    from isegm.inference.utils import load_is_model

    model = load_is_model(ckpt, "cpu")
    args = ev.parse_args(["--inference_size", str(size), "--cpu", *argv])
    family, settings = es.settings_for_checkpoint(ckpt, model, args.explicit_settings)
    es.apply_to_model(model, settings)
    predictor = ev.build_predictor(model, torch.device("cpu"), args, "GrabCut", settings)
    out = {"family": family, "settings": str(settings)}
    with torch.no_grad():
        for i in range(data["n"]):
            t0 = time.perf_counter()
            clicks, rois, probs = click_loop(predictor, Clicker, data[f"image{i}"],
                                             data[f"gt{i}"], n_clicks,
                                             lambda pr: pr.zoom_in.object_roi)
            out[f"clicks{i}"], out[f"rois{i}"] = np.array(clicks), np.array(rois)
            out[f"probs{i}"] = np.stack(probs)
            out[f"seconds{i}"] = time.perf_counter() - t0
    return out


def pick_images(n: int, names: list[str] | None) -> tuple[dict, list[str]]:
    """GrabCut samples (image, GT with -1 ignore) whose object box is smallest, or ``names``."""
    sys.path.insert(0, str(REPO))
    from isegm.data.datasets import get_eval_dataset

    ds = get_eval_dataset("GrabCut", {}, path_override=str(SHARED / "datasets" / "GrabCut"))
    all_names = [Path(str(s)).name for s in ds.dataset_samples]
    if names:
        idx = [all_names.index(x) for x in names]
    else:
        frac = []
        for i in range(len(ds)):
            gt = ds.get_sample(i).gt_mask(0)
            ys, xs = np.nonzero(gt == 1)
            frac.append((np.ptp(ys) + 1) * (np.ptp(xs) + 1) / gt.size)
        idx = list(np.argsort(frac)[:n])
    data: dict = {"n": len(idx)}
    for j, i in enumerate(idx):
        s = ds.get_sample(int(i))
        data[f"image{j}"], data[f"gt{j}"] = s.image, s.gt_mask(0).astype(np.int32)
    return data, [all_names[int(i)] for i in idx]


def compare(ours: dict, ref: dict, n: int) -> dict:
    clicks_equal = all(np.array_equal(ours[f"clicks{i}"], ref[f"clicks{i}"]) for i in range(n))
    rois_equal = all(np.array_equal(ours[f"rois{i}"], ref[f"rois{i}"]) for i in range(n))
    dps = [float(np.abs(ours[f"probs{i}"] - ref[f"probs{i}"]).max()) for i in range(n)]
    active = sum(int(r[0] != 0 or r[1] != h - 1 or r[2] != 0 or r[3] != w - 1)
                 for i in range(n) for r, (h, w) in
                 ((tuple(r), ref[f"probs{i}"].shape[1:]) for r in ref[f"rois{i}"]))
    return {"clicks_equal": clicks_equal, "crops_equal": rois_equal, "max_abs_dp": max(dps),
            "max_abs_dp_per_image": dps, "clicks_with_active_crop": active,
            "clicks_total": sum(len(ref[f"clicks{i}"]) for i in range(n)),
            "seconds_ours": round(sum(ours[f"seconds{i}"] for i in range(n)), 1),
            "seconds_ref": round(float(sum(ref[f"seconds{i}"] for i in range(n))), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="main,mst-448,simpleclick")
    p.add_argument("--sizes", default="224,448,672")
    p.add_argument("--images", type=int, default=2, help="number of GrabCut images")
    p.add_argument("--names", default="", help="GrabCut image names instead (comma-separated)")
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--weights", choices=("vitb", "small"), default="vitb")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tol", type=float, default=5e-4)
    p.add_argument("--control", action="store_true",
                   help="also run ours with the project's own settings (--eval-family project), "
                        "to show that the comparison sees the differences")
    p.add_argument("--ref-python", default=sys.executable)
    p.add_argument("--work-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                      "isegm_compare_eval"))
    p.add_argument("--json", default="", help="write the results here too")
    # subprocess side (internal)
    p.add_argument("--ref-side", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--branch", help=argparse.SUPPRESS)
    p.add_argument("--ckpt", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--inputs", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--make-ckpt", default="", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.ref_side:
        ref_side(a)
        return 0

    import torch

    torch.set_num_threads(a.threads)
    if not (REF_ROOT / "main" / ".ref_commit").exists():
        print(f"error: {REF_ROOT} not prepared; run ../shared/ref_runner/setup.sh", file=sys.stderr)
        return 2
    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data, names = pick_images(a.images, [x for x in a.names.split(",") if x] or None)
    inputs = work / f"inputs_{'-'.join(names)}.npz"  # one file per image set: runs may overlap
    np.savez_compressed(inputs, **data)
    print(f"images: {', '.join(names)}; {a.clicks} clicks; weights {a.weights}", flush=True)

    def ref_call(*extra: str) -> None:
        cmd = [a.ref_python, __file__, "--ref-side", "--threads", str(a.threads), *extra]
        subprocess.run(cmd, check=True, cwd=str(work))

    results = []
    for model in [m for m in a.models.split(",") if m]:
        ckpt = work / f"{a.weights}_{model}_focus.pth"
        if not ckpt.exists():
            ref_call("--branch", model, "--weights", a.weights, "--inputs", str(inputs),
                     "--make-ckpt", str(ckpt))
        for size in [int(s) for s in a.sizes.split(",") if s]:
            out = work / f"ref_{a.weights}_{model}_{size}_{'-'.join(names)}_{a.clicks}c.npz"
            if not out.exists():  # the original's outputs are kept: a rerun only redoes ours
                ref_call("--branch", model, "--ckpt", str(ckpt), "--size", str(size), "--inputs",
                         str(inputs), "--clicks", str(a.clicks), "--out", str(out))
            ref = dict(np.load(out))
            ours = our_side(ckpt, size, data, a.clicks)
            row = {"model": model, "size": size, "weights": a.weights, "family": ours["family"],
                   "images": names, **compare(ours, ref, data["n"])}
            if a.control:  # the same with this project's own settings: would it show?
                ctl = compare(our_side(ckpt, size, data, a.clicks, ("--eval-family", "project")),
                              ref, data["n"])
                row["control_project_settings"] = {k: ctl[k] for k in
                                                   ("clicks_equal", "crops_equal", "max_abs_dp")}
            results.append(row)
            print(json.dumps(row), flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    print("\n| model | size | clicks equal | crops equal | max abs dp | active-crop clicks |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['size']} | {r['clicks_equal']} | {r['crops_equal']} | "
              f"{r['max_abs_dp']:.2e} | {r['clicks_with_active_crop']}/{r['clicks_total']} |")
    bad = [r for r in results if not r["clicks_equal"] or r["max_abs_dp"] > a.tol]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
