"""The restricted unpicklers below every package (isegm/utils/safe_pickle.py)."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isegm.utils.safe_pickle import (
    DataPickleError,
    RestrictedUnpickler,
    load_data_pickle,
    load_npy,
    plain_data,
)

REPO = Path(__file__).resolve().parents[2]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Foreign:
    """Stands for a class of the original package pickled into a reference checkpoint."""

    def __init__(self) -> None:
        self.params = {"embed_dim": 768}


def test_importing_it_loads_neither_torch_nor_another_isegm_package() -> None:
    code = ("import sys, isegm.utils.safe_pickle; "
            "print(sorted(m for m in sys.modules if m == 'torch' or "
            "(m.startswith('isegm.') and not m.startswith('isegm.utils'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_data_pickle_refuses_code_and_reads_arrays(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(DataPickleError, match="posix.system|os.system"):
        load_data_pickle(io.BytesIO(pickle.dumps([_Evil(marker)])))
    assert not marker.exists()
    data = {"a": np.arange(6, dtype=np.uint16).reshape(2, 3), "b": [1, (2, 3)]}
    back = load_data_pickle(io.BytesIO(pickle.dumps(data, protocol=2)))
    assert np.array_equal(back["a"], data["a"]) and back["b"] == [1, (2, 3)]


def test_npy_object_arrays_go_through_the_data_unpickler(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    np.save(tmp_path / "evil.npy", np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataPickleError):
        load_npy(tmp_path / "evil.npy")
    assert not marker.exists()
    np.save(tmp_path / "ok.npy", np.array({"small": {"0": [1, 2]}}, dtype=object),
            allow_pickle=True)
    assert load_npy(tmp_path / "ok.npy").item() == {"small": {"0": [1, 2]}}
    np.save(tmp_path / "plain.npy", np.eye(2))
    assert np.array_equal(load_npy(tmp_path / "plain.npy"), np.eye(2))


def test_checkpoint_unpickler_keeps_foreign_classes_inert(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    obj = RestrictedUnpickler(io.BytesIO(pickle.dumps({"config": Foreign()}))).load()
    assert plain_data(obj) == {"config": {"__class__": f"{__name__}.Foreign",
                                          "state": {"params": {"embed_dim": 768}}}}
    inert = RestrictedUnpickler(io.BytesIO(pickle.dumps(_Evil(marker)))).load()
    assert not marker.exists() and "inert" in repr(inert)
