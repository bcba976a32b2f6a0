"""``evaluate_model.py --nproc K`` starts its ranks from a launcher that imports no torch, and a
bad command line still gives one error line (from rank 0), not one per rank."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "evaluate_model.py"


def test_launcher_imports_no_torch() -> None:
    code = ("import sys; import isegm.inference.launcher; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_evaluation_and_predictor_do_not_import_the_augmentations() -> None:
    """albumentations costs about 1 s per process (K ranks pay it K times); only training
    augments, and the package's re-exports still work."""
    code = ("import sys; import isegm.inference.eval_command, isegm.inference.evaluation_run, "
            "isegm.inference.protocol_runner, isegm.annotation.session, isegm.data.datasets; "
            "loaded = 'albumentations' in sys.modules; "
            "from isegm.data import train_augmentator; "
            "sys.exit(1 if loaded or 'albumentations' not in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_bad_command_line_with_nproc_is_one_error_line(tmp_path: Path) -> None:
    for extra, needle in ((["--checkpoint", str(tmp_path / "missing.pth")], "missing.pth"),
                          (["--n-clicks", "zero"], "--n-clicks")):
        res = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--nproc", "2",
                              "--logs-path", str(tmp_path / "logs"), *extra],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
        assert res.returncode == 2, res.stderr
        errors = [line for line in res.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and needle in errors[0], res.stderr
        assert "Traceback" not in res.stderr
