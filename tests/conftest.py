"""Shared test fixtures: the ``../shared`` folder (parity fixtures, protocol, GrabCut)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("ISEGM_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared fixtures folder not found: {path} (set ISEGM_SHARED)")
    return path


@pytest.fixture(scope="session")
def parity_dir(shared: Path) -> Path:
    return shared / "parity"


@pytest.fixture(scope="session")
def grabcut_dir(shared: Path) -> Path:
    return shared / "datasets" / "GrabCut"


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
