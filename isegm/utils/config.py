"""Loading ``config.yml``: machine paths for datasets, weights and experiment output.

Relative paths in the file are resolved against the folder that holds the file, so a fresh
clone works from any working directory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_config", "resolve_path_keys", "ConfigError", "DEFAULT_CONFIG_PATH"]

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config.yml"


class ConfigError(ValueError):
    """A config file or a key in it is missing or malformed."""


def resolve_path_keys(cfg: Mapping[str, Any], root: Path, all_paths: bool = False) -> dict:
    """Resolve, relative to ``root``, every non-empty string whose key ends in ``_PATH``
    and every string under ``IMAGENET_PRETRAINED_MODELS``."""
    out: dict = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            out[key] = resolve_path_keys(value, root, all_paths=key == "IMAGENET_PRETRAINED_MODELS")
        elif isinstance(value, str) and value and (all_paths or key.endswith("_PATH")):
            out[key] = str((root / value).resolve())
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None) -> dict:
    """Read a YAML config and return a plain dict with resolved paths.

    Raises:
        ConfigError: the file does not exist or is not a YAML mapping.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(e).split())}"
                          ) from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    _check_types(data, path)
    return resolve_path_keys(data, path.resolve().parent)


def _check_types(data: Mapping, path: Path) -> None:
    """Every ``*_PATH`` value and every pretrained-weights entry must be a path (a string) or
    empty: anything else would fail far from the file with a traceback."""
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"config file {path}: key {key!r} is not a name")
        if key == "IMAGENET_PRETRAINED_MODELS":
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"config file {path}: {key} must be a mapping of names to "
                                  f"paths, found {_kind(value)}")
            for name, entry in (value or {}).items():
                if entry is not None and not isinstance(entry, str):
                    raise ConfigError(f"config file {path}: {key}.{name} must be a path, "
                                      f"found {_kind(entry)}")
        elif key.endswith("_PATH") and value is not None and not isinstance(value, str):
            raise ConfigError(f"config file {path}: {key} must be a path, found {_kind(value)}")


def _kind(value: Any) -> str:
    return f"a {type(value).__name__} ({' '.join(repr(value).split())[:60]})"
