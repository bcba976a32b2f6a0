"""One clear line for bad configuration files and for a folder given where a file is expected
(issue 12, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from isegm import predict
from isegm.utils.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "content, needles",
    [
        ("EXPS_PATH: ./caf\xe9\n".encode("latin-1"), ["not UTF-8"]),
        (b"EXPS_PATH: [a, b]\n", ["EXPS_PATH must be a path", "list"]),
        (b"GRABCUT_PATH: 3\n", ["GRABCUT_PATH must be a path", "int"]),
        (b"IMAGENET_PRETRAINED_MODELS: [x]\n", ["IMAGENET_PRETRAINED_MODELS", "mapping"]),
        (b"IMAGENET_PRETRAINED_MODELS:\n  MAE_BASE: {a: 1}\n", ["MAE_BASE must be a path"]),
        (b"EXPS_PATH: [unclosed\n", ["not valid YAML"]),
    ],
)
def test_bad_config_files_raise_one_line(tmp_path: Path, content: bytes, needles) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for needle in needles:
        assert needle in message, message


def test_good_config_still_resolves_paths(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("EXPS_PATH: ./exps\nDAVIS_PATH:\nIMAGENET_PRETRAINED_MODELS:\n"
                    "  MAE_BASE: w/mae.pth\n")
    cfg = load_config(path)
    assert cfg["EXPS_PATH"] == str(tmp_path / "exps") and cfg["DAVIS_PATH"] is None
    assert cfg["IMAGENET_PRETRAINED_MODELS"]["MAE_BASE"] == str(tmp_path / "w" / "mae.pth")


def test_a_folder_as_image_or_mask_is_named_a_folder(tmp_path: Path) -> None:
    for reader in (predict.read_image, predict.read_mask):
        with pytest.raises(predict.InputError, match="is a directory"):
            reader(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "isegm.predict", "--cpu", "--image", str(tmp_path),
         "--clicks", "1,1,+", "--output", str(tmp_path / "m.png")],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, PYTHONWARNINGS="ignore"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == f"error: {tmp_path} is a directory, not an image file"
