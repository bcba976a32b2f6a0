"""The errors of an annotation session that name a user's mistake (reported as one line).

Torch-free, so a command line can raise and report them while it checks its arguments.
"""

from __future__ import annotations

__all__ = ["DeviceError", "InputError"]


class InputError(ValueError):
    """A bad image, mask or click list given by the user (reported in one line, exit code 2)."""


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""
