"""GrabCut on the real benchmark files (read-only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isegm.data.datasets import GrabCutDataset, get_eval_dataset

GRABCUT_PATH = Path("/work/shared/datasets/GrabCut")

pytestmark = pytest.mark.skipif(not (GRABCUT_PATH / "data_GT").is_dir(),
                                reason="GrabCut benchmark not available")


def test_grabcut_50_samples_match_raw_files():
    ds = GrabCutDataset(GRABCUT_PATH)
    assert ds.name == "GrabCut" and len(ds) == 50
    names = [p.stem for p in sorted((GRABCUT_PATH / "data_GT").iterdir())]
    seen_ignore = 0
    for i in range(len(ds)):
        s = ds.get_sample(i)
        assert s.sample_id == i and s.image_name == names[i]
        raw = np.asarray(Image.open(GRABCUT_PATH / "boundary_GT" / f"{names[i]}.bmp"))
        if raw.ndim == 3:
            raw = raw[:, :, 0]
        gt = s.gt_mask()
        assert gt.dtype == np.int32 and gt.shape == raw.shape == s.image.shape[:2]
        assert np.array_equal(gt == 1, raw > 128)
        assert np.array_equal(gt == -1, raw == 128)
        assert np.array_equal(gt == 0, (raw < 128))
        seen_ignore += int((gt == -1).any())
        assert s.image.dtype == np.uint8 and s.image.shape[2] == 3
    assert seen_ignore > 0


def test_grabcut_image_is_rgb():
    ds = GrabCutDataset(GRABCUT_PATH)
    s = ds.get_sample(0)
    ref = np.asarray(Image.open(GRABCUT_PATH / "data_GT" / ds.dataset_samples[0]).convert("RGB"))
    # JPEG decoders may differ by a grey level; channel order must not.
    assert np.abs(s.image.astype(int) - ref.astype(int)).mean() < 1.0


def test_registry_builds_grabcut_from_config():
    ds = get_eval_dataset("GrabCut", {"GRABCUT_PATH": str(GRABCUT_PATH)})
    assert isinstance(ds, GrabCutDataset) and len(ds) == 50
    ds = get_eval_dataset(" GrabCut", {}, path_override=GRABCUT_PATH)
    assert len(ds) == 50


def test_header_check_reads_every_format_in_a_fresh_process(tmp_path):
    """The size check must not depend on which PIL plugins earlier code happened to load (a
    fresh process refused every GrabCut BMP mask: 'MPO' was asked for before PIL knew it)."""
    import subprocess
    import sys

    import cv2
    import numpy as np

    image = np.zeros((5, 7, 3), np.uint8)
    for ext in (".bmp", ".png", ".jpg", ".tif", ".webp"):
        cv2.imwrite(str(tmp_path / f"x{ext}"), image)
    cv2.imwrite(str(tmp_path / "grey.bmp"), image[..., 0])
    code = ("import sys, numpy as np; from isegm.data.io import check_image_header; "
            "[print(check_image_header(np.fromfile(p, np.uint8), p)) for p in sys.argv[1:]]")
    files = sorted(str(p) for p in tmp_path.iterdir())
    for path in files:  # each alone: no other format opened before it in the process
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "(7, 5)", (path, out.stderr)
