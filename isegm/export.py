"""``python -m isegm.export``: a checkpoint as an ONNX file (onnxruntime, annotation front-ends).

    python -m isegm.export --checkpoint weights/mst_tiny_photos_bigobjects.pth --output model.onnx
    python -m isegm.export --arch mst_448_vit_base_448 --output mst448.onnx   # random weights

The graph takes ``image [B, 4, S, S]`` (RGB in [0, 1] and the previous-mask probability; 3
channels for a model without it) and ``points [B, 2N, 3]`` (``(y, x, click_index)``, positives
in rows ``0..N-1``, negatives after, padding ``-1``) and returns ``logits [B, 1, S, S]``; the
batch and the click rows are dynamic, the side ``S`` is fixed (``--size``, default the model's
training size). ``--int8`` also writes ``<output stem>.int8.onnx`` (dynamic quantisation of the
Linear layers). The export itself is :func:`isegm.inference.onnx_export.export_onnx`
(``--backend onnxruntime`` from a checkpoint exports an encoder + click graph pair instead,
:func:`~isegm.inference.onnx_export.export_onnx_pair`, so that clicks skip the image encoding).
Exit codes: 0 written, 2 bad arguments or checkpoint (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

logger = logging.getLogger("isegm.export")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m isegm.export", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint file (this project's or a published one)")
    src.add_argument("--arch", help="a registered architecture with random weights (timing, "
                                    "tests)")
    p.add_argument("--output", required=True, help="the .onnx file to write")
    p.add_argument("--size", type=int, default=None,
                   help="square input side (default: the model's training size)")
    p.add_argument("--variant", choices=("at", "it"), default=None,
                   help="architecture of the AT/IT ablation checkpoints")
    p.add_argument("--int8", action="store_true",
                   help="also write <stem>.int8.onnx with int8 Linear weights")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from isegm.utils.log import setup_logging

    setup_logging()
    args = build_parser().parse_args(argv)
    try:
        import torch

        from isegm.inference.onnx_export import export_onnx, quantize_onnx_int8
        from isegm.inference.utils import CheckpointError, load_is_model
        from isegm.model import build_model

        if args.size is not None and args.size < 32:
            raise ValueError("--size must be >= 32")
        if args.checkpoint:
            model = load_is_model(args.checkpoint, "cpu", variant=args.variant)
        else:
            torch.manual_seed(0)
            model = build_model(args.arch).eval()
        out = export_onnx(model, args.output, args.size)
        logger.info("wrote %s", out)
        if args.int8:
            q = quantize_onnx_int8(out, out.with_suffix(".int8.onnx"))
            logger.info("wrote %s", q)
    except (CheckpointError, ValueError, KeyError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
