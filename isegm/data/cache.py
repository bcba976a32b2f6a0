"""Cache of slow-to-build sample lists (e.g. the SBD instance list) outside the dataset folder.

The reference writes ``<split>_images_and_ids_list.pkl`` into the dataset folder, which fails on
read-only data and goes stale silently. Here the list is kept in memory and, if possible, as JSON
in the user cache folder (``$ISEGM_CACHE_DIR``, else ``$XDG_CACHE_HOME/isegm``, else
``~/.cache/isegm``), under a key that includes the files it was built from (path, size, mtime).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["cache_dir", "cached_list", "file_stamp", "TransientList"]

logger = logging.getLogger(__name__)

_MEMORY: dict[str, Any] = {}
_VERSION = 1


class TransientList(list):
    """A build result that must not be cached (e.g. some files could not be read)."""


def cache_dir() -> Path:
    """Folder for isegm's cached dataset indices."""
    if os.environ.get("ISEGM_CACHE_DIR"):
        return Path(os.environ["ISEGM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "isegm"


def file_stamp(path: str | Path) -> list:
    """``[resolved path, size, mtime_ns]`` of a file, to key a cache entry on."""
    path = Path(path)
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def cached_list(name: str, key: Any, build: Callable[[], list]) -> list:
    """Return ``build()``, cached in memory and on disk under ``(name, key)``.

    ``key`` must be JSON-serialisable and change whenever the result would. The result must be a
    JSON-serialisable list; tuples come back as lists. A :class:`TransientList` result is
    returned as is and not cached, so a listing built from broken files is redone next time.
    """
    digest = hashlib.sha1(json.dumps([_VERSION, name, key], sort_keys=True).encode()).hexdigest()
    mem_key = f"{name}-{digest}"
    if mem_key in _MEMORY:
        return _MEMORY[mem_key]

    path = cache_dir() / "datasets" / f"{name}-{digest[:20]}.json"
    try:
        result = json.loads(path.read_text())
        logger.debug("loaded cached %s list from %s", name, path)
    except (OSError, ValueError):
        result = build()
        if isinstance(result, TransientList):
            return json.loads(json.dumps(result))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                             suffix=".tmp") as f:
                json.dump(result, f)
            os.replace(f.name, path)
            logger.info("cached %s list in %s", name, path)
        except OSError as e:
            logger.warning("could not write the %s cache %s (%s); keeping it in memory", name,
                           path, e)
        result = json.loads(json.dumps(result))  # same types as a cache hit
    _MEMORY[mem_key] = result
    return result
