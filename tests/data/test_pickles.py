"""Dataset pickles are untrusted: a crafted LoveDA / COCO+LVIS file must not run code.

Before the fix, ``pickle.load`` / ``np.load(allow_pickle=True)`` ran the ``os.system`` call
hidden in these files (the marker file appeared)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from fake_files import random_image, write_rgb

from isegm.data.base import DatasetError
from isegm.data.datasets import CocoLvisDataset, LoveDADataset
from isegm.data.packed_masks import encode_layers


class _Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _split(root: Path, rng, hannotation, masks, lovedams=None) -> Path:
    split = root / "val"
    write_rgb(split / "images" / "a.jpg", random_image(rng))
    (split / "masks").mkdir(parents=True)
    with open(split / "masks" / "a.pickle", "wb") as f:
        pickle.dump(masks, f)
    with open(split / "hannotation.pickle", "wb") as f:
        pickle.dump(hannotation, f)
    if lovedams is not None:
        payload = np.empty((), dtype=object)
        payload[()] = lovedams
        with open(split / "lovedams.npy", "wb") as f:  # what np.save writes, any payload
            np.lib.format.write_array_header_1_0(
                f, {"descr": "|O", "fortran_order": False, "shape": ()})
            pickle.dump(payload, f, protocol=3)
    return split


def _good(rng):
    layers = np.zeros((40, 50, 1), np.uint8)
    layers[:10, :10, 0] = 1
    return ({"a": {"num_instance_masks": 1, "hierarchy": {0: None}}},
            (encode_layers(layers), [(0, 1)]))


@pytest.mark.parametrize("bad", ["hannotation", "masks", "lovedams"])
def test_malicious_pickle_runs_nothing_and_gives_one_line(tmp_path, rng, bad):
    marker = tmp_path / "pwned"
    hannotation, masks = _good(rng)
    lovedams = {"small": {"0": [0]}}
    if bad == "hannotation":
        hannotation = {"a": {"num_instance_masks": 1, "hierarchy": _Evil(marker)}}
    elif bad == "masks":
        masks = (_Evil(marker), [(0, 1)])
    else:
        lovedams = {"small": _Evil(marker)}
    _split(tmp_path / "root", rng, hannotation, masks, lovedams)
    with pytest.raises(DatasetError) as e:
        LoveDADataset(tmp_path / "root", scale="small").get_sample(0)
    assert not marker.exists(), "code from the data file ran"
    message = str(e.value)
    assert "\n" not in message and "system" in message
    assert {"hannotation": "hannotation.pickle", "masks": "a.pickle",
            "lovedams": "lovedams.npy"}[bad] in message
    if bad == "masks":
        with pytest.raises(DatasetError, match="a.pickle"):
            CocoLvisDataset(tmp_path / "root", split="val").get_sample(0)
        assert not marker.exists()


def test_genuine_files_still_load(tmp_path, rng):
    hannotation, masks = _good(rng)
    _split(tmp_path, rng, hannotation, masks, {"small": {"0": [0]}})
    sample = LoveDADataset(tmp_path, scale="small").get_sample(0)
    assert sample.gt_mask().sum() == 100
    assert CocoLvisDataset(tmp_path, split="val").get_sample(0).objects_ids == [0]
    # lovedams.npy as numpy itself writes it (np.save of a dict)
    np.save(tmp_path / "val" / "lovedams.npy", {"small": {"0": [0]}}, allow_pickle=True)
    assert len(LoveDADataset(tmp_path, scale="small")) == 1
