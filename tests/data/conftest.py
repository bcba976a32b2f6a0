"""Fixtures for the data tests: an isolated cache folder and a seeded generator."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Keep dataset-index caches out of the user's home folder."""
    cache = tmp_path_factory.mktemp("isegm_cache")
    monkeypatch.setenv("ISEGM_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
