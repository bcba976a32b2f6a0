"""Click lists: the ``"x,y,+ x,y,-"`` text of the command line and the checked
``(x, y, is_positive)`` tuples every annotation tool passes to :class:`Predictor`.

NumPy only (no torch), so a command line parses its clicks before the model code loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from isegm.annotation.errors import InputError

__all__ = ["ClickTuple", "check_clicks", "parse_clicks"]

ClickTuple = tuple[float, float, bool]  # (x, y, is_positive), pixels of the original image

_SIGNS = {"+": True, "-": False}


def parse_clicks(text: str) -> list[ClickTuple]:
    """Parses ``"x,y,+ x,y,-"`` (whitespace or ';' between clicks) into (x, y, is_positive).

    Raises:
        InputError: the list is empty or a click is malformed.
    """
    items = text.replace(";", " ").split()
    if not items:
        raise InputError('empty click list; expected e.g. --clicks "120,80,+ 200,40,-"')
    clicks: list[ClickTuple] = []
    for i, item in enumerate(items, 1):
        parts = item.split(",")
        bad = f"click {i} {item!r} is malformed; expected x,y,+ or x,y,- (pixels)"
        if len(parts) != 3 or parts[2].strip() not in _SIGNS:
            raise InputError(bad)
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError(bad) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InputError(bad)
        clicks.append((x, y, _SIGNS[parts[2].strip()]))
    return clicks


def _click_text(click: Sequence[Any]) -> str:
    x, y, positive = click
    return f"({float(x):g},{float(y):g},{'+' if positive else '-'})"


def _is_positive(value: Any) -> bool | None:
    """True/False for a bool or a number equal to +1/-1 (a row of a numpy click array);
    None for anything else ("-", "+", 0, 0.5, None, ...)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (1, -1):
        return bool(value == 1)
    return None


def check_clicks(clicks: Sequence[Sequence[Any]], size: tuple[int, int]) -> list[ClickTuple]:
    """Validates clicks against an image of ``size`` (H, W) and normalises their types.

    A click is ``(x, y, is_positive)`` with finite x, y inside the image and ``is_positive`` a
    bool or the integer +1 / -1 (a string such as ``"-"`` is refused, not read as truthy).

    Raises:
        InputError: ``clicks`` is not a list of such tuples, or a click lies outside the image.
    """
    if clicks is None or isinstance(clicks, (str, bytes)) or not hasattr(clicks, "__iter__"):
        raise InputError(
            f"clicks must be a list of (x, y, is_positive) tuples, got {type(clicks).__name__}"
        )
    h, w = size
    out: list[ClickTuple] = []
    for i, click in enumerate(clicks, 1):
        try:
            x, y, positive = click
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise InputError(f"click {i} {click!r} is not (x, y, is_positive)") from None
        is_positive = _is_positive(positive)
        if is_positive is None:
            raise InputError(
                f"click {i} {click!r}: is_positive must be True/False or +1/-1, "
                f"got {positive!r}"
            )
        if not (0 <= x < w and 0 <= y < h):
            raise InputError(
                f"click {i} {_click_text(click)} is outside the image of {w}x{h} pixels "
                f"(x must be in [0, {w}), y in [0, {h}))"
            )
        out.append((x, y, is_positive))
    return out

