"""``--precision`` / ``--backend``: the flags, what this processor offers, and their checks.

Torch-free, so a command line answers ``--help`` and a bad flag before torch is imported.
:func:`isegm.inference.backends.load_inference_model` turns the checked choice into a model.

What the processor offers decides the CPU precisions (issue 25):

* ``fp32``: always.
* ``bf16`` (autocast): only with native bfloat16 instructions (x86 ``avx512_bf16`` or
  ``amx_bf16``; ARM ``bf16``). Without them PyTorch emulates bfloat16 and a forward is 5-15x
  *slower* than fp32 (measured on an AVX2 EPYC), so it is refused with one line.
  ``ISEGM_FORCE_PRECISION=1`` runs it anyway (accuracy checks on a machine without them).
* ``int8`` (dynamic quantisation of the Linear layers): x86 with ``avx2`` (fbgemm; faster with
  ``avx512_vnni`` / ``avx_vnni`` / ``amx_int8``), ARM with ``asimd`` (qnnpack).

``fp16`` (autocast) exists on CUDA only; ``int8`` and the ``onnxruntime`` backend run on the CPU
only.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
from pathlib import Path

__all__ = [
    "BACKENDS",
    "CPU_PRECISIONS",
    "FORCE_ENV",
    "PRECISIONS",
    "add_precision_arguments",
    "check_precision",
    "cpu_flags",
    "cpu_precisions",
    "describe_cpu",
]

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
CPU_PRECISIONS = ("fp32", "bf16", "int8")
BACKENDS = ("torch", "onnxruntime")
FORCE_ENV = "ISEGM_FORCE_PRECISION"

_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 (Linux names), ARM ("bf16")
_INT8_FAST_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
_INT8_FLAGS = ("avx2", "asimd")


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first processor in ``cpuinfo`` (x86 ``flags``, ARM
    ``Features``); empty where the file does not exist (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def cpu_precisions(flags: frozenset[str] | None = None) -> dict[str, bool]:
    """Which CPU precisions this processor (or the given ``flags``) runs fast."""
    flags = cpu_flags() if flags is None else flags
    arm_mac = not flags and platform.system() == "Darwin" and platform.machine() == "arm64"
    return {
        "fp32": True,
        "bf16": any(f in flags for f in _BF16_FLAGS),
        "int8": arm_mac or any(f in flags for f in _INT8_FLAGS + _INT8_FAST_FLAGS),
    }


def describe_cpu(flags: frozenset[str] | None = None) -> str:
    """One line: what this CPU offers, and the flags that decide it."""
    flags = cpu_flags() if flags is None else flags
    offered = [p for p, ok in cpu_precisions(flags).items() if ok]
    have = [f for f in _BF16_FLAGS + _INT8_FAST_FLAGS + _INT8_FLAGS if f in flags]
    missing = [] if cpu_precisions(flags)["bf16"] else ["no avx512_bf16/amx_bf16: bf16 refused"]
    seen = ", ".join(have) if have else "none of the flags known here"
    return (f"CPU precisions offered: {', '.join(offered)} (flags: {seen}"
            + ("; " + "; ".join(missing) if missing else "") + ")")


def add_precision_arguments(parser: argparse.ArgumentParser, *, cuda: bool = False) -> None:
    """Adds ``--precision`` and ``--backend`` (check them with :func:`check_precision`).

    ``cuda``: also offer fp16 (a command line that can run on a GPU)."""
    choices = PRECISIONS if cuda else CPU_PRECISIONS
    parser.add_argument(
        "--precision", choices=choices, default="fp32",
        help="network precision (default fp32): bf16 autocast where the CPU has native "
             "bfloat16 (avx512_bf16/amx_bf16) or on CUDA; int8 dynamic quantisation of the "
             "Linear layers on the CPU" + ("; fp16 autocast on CUDA" if cuda else "")
             + f"; {describe_cpu()}")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="torch",
        help="run the network with torch (default) or onnxruntime (CPU; fp32 or int8; a "
             ".pth is exported to ONNX once and cached in $ISEGM_CACHE or ~/.cache/isegm, or give "
             "a .onnx file)")


def check_precision(precision: str, backend: str = "torch", device_type: str = "cpu",
                    flags: frozenset[str] | None = None) -> str:
    """Checks a precision / backend / device choice; returns the one line that says what the
    CPU supports (for the log).

    Raises:
        ValueError: one line naming the problem (unknown value, or a precision this device or
            processor does not offer).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if backend not in BACKENDS:
        raise ValueError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    info = describe_cpu(flags)
    if backend == "onnxruntime":
        if device_type != "cpu":
            raise ValueError("--backend onnxruntime runs on the CPU here (add --cpu)")
        if precision not in ("fp32", "int8"):
            raise ValueError(f"--backend onnxruntime: --precision {precision} is not offered "
                             "(fp32 or int8)")
    if device_type != "cpu":
        if precision == "int8":
            raise ValueError("--precision int8 runs on the CPU only (add --cpu)")
        return info
    if precision == "fp16":
        raise ValueError(f"--precision fp16 needs CUDA; {info}")
    if precision in ("bf16", "int8") and not cpu_precisions(flags)[precision]:
        if os.environ.get(FORCE_ENV) == "1":
            return info + f"; {precision} forced by {FORCE_ENV}=1 (slow here)"
        raise ValueError(f"--precision {precision}: this CPU has no fast {precision} "
                         f"instructions; {info}; {FORCE_ENV}=1 runs it anyway")
    return info
