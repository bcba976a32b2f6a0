"""Regenerate the one-training-step fixtures of the ORIGINAL code (issue 23, item 3).

For each small parity model (``../shared/parity/small_<branch>.pth``: ``main``, ``mst-448``,
``simpleclick``) this runs, in float64, one training step of the original code, extracted by
``../shared/ref_runner`` (run its ``setup.sh`` first), on one fixed batch, and writes to
``tests/fixtures/reference_training/``:

* ``inputs.npz``: the batch: ``image_u8 [2,4,448,448]`` (RGB + previous mask, the parity
  inputs), ``points [2,8,3]`` (the parity clicks) and ``gt [2,1,448,448]`` int8 (GrabCut
  ``llama`` / ``doll`` masks resized nearest to 448: 1 object, 0 background, -1 the ignore band);
* ``<branch>.json``: the original's loss terms and total, a digest of every parameter's
  gradient (sum, sum of squares, sum of |g|, max |g| and up to 24 entries at fixed flat
  indices), the per-parameter optimizer settings of the seed command (no
  ``--layerwise-decay``) and of ``--layerwise-decay``, and a digest of the weight change after
  one optimizer step.

The step is what the original ``ISTrainer.batch_forward`` does after the data pipeline and the
click simulation, with the randomness bypassed: model in train mode with its dropout layers
off, ``model(cat(image, prev_mask), points)``, the losses of the experiment script added in
``ISTrainer.add_loss``'s order, ``backward()``, ``optimizer.step()``.

    python benchmarks/make_training_fixtures.py [--branches main mst-448 simpleclick]

Each branch runs in its own process (the three original trees are all a package ``isegm``).
Nothing of the original code is copied into this project: it is imported at generation time
only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ISEGM_SHARED", REPO.parent / "shared")).resolve()
PARITY = SHARED / "parity"
GRABCUT = SHARED / "datasets" / "GrabCut"
OUT = REPO / "tests" / "fixtures" / "reference_training"
BRANCHES = ("main", "mst-448", "simpleclick")
SAMPLES = 24  # gradient entries kept per parameter


def sample_indices(name: str, numel: int) -> np.ndarray:
    """Fixed flat indices of a parameter (the test reads them from the fixture)."""
    if numel <= SAMPLES:
        return np.arange(numel)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return np.sort(rng.choice(numel, SAMPLES, replace=False))


def make_inputs(path: Path) -> None:
    """Parity image / previous mask / clicks and the GrabCut GT with its ignore band."""
    import torch
    from PIL import Image

    inp = torch.load(PARITY / "inputs.pt", weights_only=True)
    gts = []
    for name in ("llama", "doll"):  # the images of parity samples 0 and 1
        raw = np.array(Image.open(GRABCUT / "boundary_GT" / f"{name}.bmp"))
        raw = raw[..., 0] if raw.ndim == 3 else raw
        raw = np.array(Image.fromarray(raw).resize((448, 448), Image.NEAREST))
        gt = np.zeros(raw.shape, np.int8)
        gt[raw > 128] = 1
        gt[raw == 128] = -1
        gts.append(gt[None])
    np.savez_compressed(path, image_u8=inp["image_u8"].numpy(), points=inp["points"].numpy(),
                        gt=np.stack(gts))


def _digest(name: str, t) -> dict:
    flat = t.detach().reshape(-1)
    idx = sample_indices(name, flat.numel())
    return {
        "sum": float(flat.sum()),
        "sumsq": float((flat * flat).sum()),
        "sumabs": float(flat.abs().sum()),
        "absmax": float(flat.abs().max()),
        "idx": idx.tolist(),
        "values": flat[idx].tolist(),
    }


def _param_settings(model, optimizer) -> dict:
    """Per parameter name: the optimizer's lr, weight decay, betas, eps and class; parameters
    in no group are absent."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in optimizer.param_groups:
        for p in g["params"]:
            out[names[id(p)]] = {"lr": g["lr"], "weight_decay": g["weight_decay"],
                                 "betas": list(g["betas"]), "eps": g["eps"],
                                 "optimizer": type(optimizer).__name__}
    return out


def worker(branch: str, out: Path) -> None:
    sys.path.insert(0, str(SHARED / "ref_runner"))
    import bench_ref  # the ref_runner's loader of the extracted original tree

    torch, tree = bench_ref.import_reference(branch)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.use_deterministic_algorithms(True)
    from isegm.engine import optimizer as ref_optim
    from isegm.engine.trainer import ISTrainer
    from isegm.model import losses as ref_losses
    from isegm.utils.serialization import load_model

    ck = torch.load(PARITY / f"small_{branch}.pth", map_location="cpu", weights_only=False)
    model = load_model(ck["config"], False)
    model.load_state_dict(ck["state_dict"], strict=True)
    model = model.double()
    bench_ref.fix_pinvs_float64(torch, model)
    model.train()
    for m in model.modules():  # bypass the randomness: dropout off, the rest in train mode
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.eval()

    data = np.load(out / "inputs.npz")
    image = torch.from_numpy(data["image_u8"]).double() / 255
    points = torch.from_numpy(data["points"]).double()
    gt = torch.from_numpy(data["gt"]).double()

    # the loss_cfg of the experiment scripts (models/adaptivevit_base448_cclvs.py of both MST
    # branches, models/iter_mask/plainvit_base448_cocolvis_itermask.py of SimpleClick)
    loss_cfg = {"instance_loss": ref_losses.NormalizedFocalLossSigmoid(alpha=0.5, gamma=2),
                "instance_loss_weight": 1.0}
    if branch != "simpleclick":
        loss_cfg.update(token_loss=ref_losses.PatchLoss(), token_loss_weight=1.0,
                        score_loss=ref_losses.ScoreLoss(), score_loss_weight=1.0)
    fake = SimpleNamespace(loss_cfg=loss_cfg, val_loss_cfg=loss_cfg)
    original = {"main": 5e-6, "mst-448": 5e-6, "simpleclick": 5e-5}[branch]
    opt_name = "adam" if branch == "simpleclick" else "adamw"
    opt_kwargs = {"lr": original, "betas": (0.9, 0.999), "eps": 1e-8}

    # the optimizer of the seed command, and the one of --layerwise-decay (param groups only)
    optimizer = ref_optim.get_optimizer(model, opt_name, dict(opt_kwargs))
    wrapped = model if branch == "simpleclick" else SimpleNamespace(module=model)  # DDP's .module
    lwd = ref_optim.get_optimizer_with_layerwise_decay(wrapped, opt_name, dict(opt_kwargs))

    optimizer.zero_grad(set_to_none=True)
    output = model(image.clone(), points.clone())
    total, logged = 0.0, {}
    for name, key in (("instance_loss", "instances"), ("instance_aux_loss", "instances"),
                      ("token_loss", "tokens"), ("score_loss", "tokens")):
        total = ISTrainer.add_loss(fake, name, total, logged, False,
                                   lambda key=key: (output[key], gt))
    total.backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: (_digest(n, p.grad) if p.grad is not None else None)
             for n, p in model.named_parameters()}
    optimizer.step()
    update = {n: _digest(n, p.detach() - before[n]) for n, p in model.named_parameters()
              if p.grad is not None}
    result = {
        "branch": branch,
        "commit": (tree / ".ref_commit").read_text().strip(),
        "torch": torch.__version__,
        "losses": {k.replace("_loss", ""): v.item() for k, v in logged.items()},
        "overall": total.item(),
        "grads": grads,
        "optimizer": _param_settings(model, optimizer),
        "optimizer_layerwise_decay": _param_settings(model, lwd),
        "update": update,
        "output_instances_digest": _digest("instances", output["instances"]),
    }
    (out / f"{branch}.json").write_text(json.dumps(result, indent=0))
    nan = sum(g is None for g in grads.values())
    print(f"{branch}: overall {result['overall']!r} {result['losses']}, "
          f"{len(grads) - nan} gradients ({nan} unused)", file=sys.stderr)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--branches", nargs="+", choices=BRANCHES, default=list(BRANCHES))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", choices=BRANCHES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.out)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    make_inputs(args.out / "inputs.npz")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no project isegm
    for branch in args.branches:
        r = subprocess.run([sys.executable, __file__, "--worker", branch, "--out", str(args.out)],
                           env=env, cwd="/")
        if r.returncode:
            return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
