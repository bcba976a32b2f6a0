"""Bad inputs: missing or empty folders, corrupt files, config problems → one-line DatasetError."""
from __future__ import annotations

import numpy as np
import pytest
from fake_files import random_image, write_gray, write_rgb

from isegm.data.base import DatasetError
from isegm.data.datasets import EVAL_DATASETS, DavisDataset, GrabCutDataset, get_eval_dataset
from isegm.data.io import read_image


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_folder_names_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError) as err:
        GrabCutDataset(missing)
    assert str(missing) in _one_line(err)


def test_empty_folder_and_missing_subfolder(tmp_path):
    with pytest.raises(DatasetError, match="is empty"):
        DavisDataset(tmp_path)
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError) as err:
        DavisDataset(tmp_path)
    assert str(tmp_path / "gt") in _one_line(err)


def test_corrupt_image_names_the_file(tmp_path, rng):
    write_rgb(tmp_path / "img" / "good.jpg", random_image(rng))
    (tmp_path / "img" / "bad.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    for stem in ("good", "bad"):
        write_gray(tmp_path / "gt" / f"{stem}.png", np.full((40, 50), 255, np.uint8))
    ds = DavisDataset(tmp_path)
    assert [ds.dataset_samples[i] for i in range(2)] == ["bad.jpg", "good.jpg"]
    with pytest.raises(DatasetError) as err:
        ds.get_sample(0)
    assert str(tmp_path / "img" / "bad.jpg") in _one_line(err)
    assert ds.get_sample(1).gt_mask().all()  # the evaluator can go on


def test_corrupt_and_missing_mask(tmp_path, rng):
    write_rgb(tmp_path / "data_GT" / "a.jpg", random_image(rng))
    write_rgb(tmp_path / "data_GT" / "b.jpg", random_image(rng))
    (tmp_path / "boundary_GT").mkdir()
    (tmp_path / "boundary_GT" / "a.bmp").write_bytes(b"")
    ds = GrabCutDataset(tmp_path)
    with pytest.raises(DatasetError) as err:
        ds.get_sample(0)
    assert str(tmp_path / "boundary_GT" / "a.bmp") in _one_line(err)
    with pytest.raises(DatasetError) as err:
        ds.get_sample(1)
    assert "b.jpg" in _one_line(err)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="x.png"):
        read_image(tmp_path / "x.png")


def test_registry_errors(tmp_path):
    with pytest.raises(DatasetError) as err:
        get_eval_dataset("DAVIS", {})
    assert "DAVIS" in _one_line(err) and "DAVIS_PATH" in str(err.value)
    with pytest.raises(DatasetError) as err:
        get_eval_dataset("GrabCut", {"GRABCUT_PATH": str(tmp_path / "missing")})
    assert "GRABCUT_PATH" in _one_line(err) and "missing" in str(err.value)
    with pytest.raises(DatasetError, match="is empty"):
        get_eval_dataset("SBD", {"SBD_PATH": str(tmp_path)})
    with pytest.raises(DatasetError, match="unknown dataset"):
        get_eval_dataset("NoSuchSet", {})
    with pytest.raises(DatasetError, match="ImagesDir"):
        get_eval_dataset(f"ImagesDir:{tmp_path / 'none'}", {})


def test_registry_covers_the_cli_names():
    expected = {"GrabCut", "Berkeley", "DAVIS", "COCO_MVal", "PascalVOC", "SBD", "SBD_Train",
                "LoveDA", "LoveDASMALL", "LoveDAMEDIUM", "LoveDALARGE", "LoveDAHUGE",
                "HQSeg44k", "SyntheticSMALL", "SyntheticMEDIUM", "SyntheticLARGE", "Synthetic",
                "PhotoScenes", "PhotoScenesSMALL", "PhotoScenesMEDIUM", "PhotoScenesLARGE"}
    assert set(EVAL_DATASETS) == expected
    loveda_keys = {EVAL_DATASETS[n][1] for n in expected if n.startswith("LoveDA")}
    assert loveda_keys == {"IS_LoveDA_PATH"}
    assert EVAL_DATASETS["LoveDAMEDIUM"][2]["scale"] == "medium"
    assert EVAL_DATASETS["LoveDALARGE"][2]["scale"] == "large"


def test_config_keys_exist_in_config_yml():
    from isegm.utils.config import load_config

    cfg = load_config()
    for name, (_, key, _) in EVAL_DATASETS.items():
        assert key is None or key in cfg, (name, key)


def test_unset_path_is_a_dataset_error():
    from isegm.data.datasets import CocoLvisDataset

    with pytest.raises(DatasetError, match="no dataset folder"):
        CocoLvisDataset(None)
