"""demo.py's start-up errors: one line, exit code 2, before any window opens."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from demo_fakes import DiskNet  # tests/demo is on sys.path

from isegm.annotation import defaults
from isegm.demo.cli import main
from isegm.inference.utils import DEFAULT_MODEL_RECIPE
from isegm.utils.cli import default_threads


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_missing_checkpoint(tmp_path: Path, capsys):
    assert main(["--cpu", "--checkpoint", str(tmp_path / "nope.pth")]) == 2
    assert "nope.pth" in one_error_line(capsys)


def test_missing_default_checkpoint_says_how_to_make_it(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(defaults, "DEFAULT_CHECKPOINT", tmp_path / "weights" / "default.pth")
    assert main(["--cpu"]) == 2
    line = one_error_line(capsys)
    assert DEFAULT_MODEL_RECIPE in line and "python train.py models/" in line


def test_missing_image_and_bad_values(tmp_path: Path, capsys):
    assert main(["--cpu", "--image", str(tmp_path / "none.jpg")], model=DiskNet()) == 2
    assert "image not found" in one_error_line(capsys)
    assert main(["--cpu", "--threshold", "-0.1"], model=DiskNet()) == 2
    assert "--threshold" in one_error_line(capsys)
    assert main(["--cpu", "--alpha", "3"], model=DiskNet()) == 2
    assert "--alpha" in one_error_line(capsys)
    assert main(["--cpu", "--precision", "fp16"], model=DiskNet()) == 2
    assert "--precision fp16" in one_error_line(capsys)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 only: Tk needs DISPLAY")
def test_no_display(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    pytest.importorskip("tkinter")
    assert main(["--cpu"], model=DiskNet()) == 2
    assert "cannot open the window" in one_error_line(capsys)


def test_threads_option(capsys, monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    assert main(["--cpu", "--threads", "0"], model=DiskNet()) == 2
    assert "--threads must be >= 1" in one_error_line(capsys)
    monkeypatch.delenv("DISPLAY", raising=False)  # stop right after the options are applied
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    pytest.importorskip("tkinter")
    main(["--cpu", "--threads", "3"], model=DiskNet())
    main(["--cpu"], model=DiskNet())
    assert seen == [3, default_threads()]
