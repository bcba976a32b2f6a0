"""Comparing two ``evaluate_model.py`` runs of the built-in default on GrabCut: the checks the
batched (``test_lockstep.py``) and multi-process (``test_sharding.py``) runs share against
their one-at-a-time / one-process reference. Imported by those tests (tests/inference is on
sys.path)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from isegm.inference.results import read_sample_log
from isegm.inference.utils import DEFAULT_MODEL_FILE

REPO = Path(__file__).resolve().parents[2]
DEFAULT_NAME = Path(DEFAULT_MODEL_FILE).stem  # the model label of the built-in default
TIMING_KEYS = {"spc", "time_s", "time", "reused_samples", "evaluated_samples"}


def skip_without_default_or_grabcut(grabcut_dir: Path) -> None:
    if not (REPO / "weights" / DEFAULT_MODEL_FILE).is_file():
        pytest.skip(f"the built-in default weights/{DEFAULT_MODEL_FILE} is missing")
    if not grabcut_dir.is_dir():
        pytest.skip(f"GrabCut not found at {grabcut_dir}")


def run_folder(logs: Path) -> Path:
    """The one run folder under ``--logs-path``."""
    (found,) = [p for p in logs.iterdir() if p.is_dir()]
    return found


def table(out: str) -> list[list[str]]:
    """The printed table's rows without the timing columns (SPC, Time)."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ")]
    return [r[:-3] + r[-1:] for r in rows]


def records(folder: Path) -> list[str]:
    """The per-sample log of the default on GrabCut, in index order, without timings."""
    log = read_sample_log(folder / "ious" / f"{DEFAULT_NAME}_GrabCut.jsonl")
    out = []
    for i in sorted(log):
        log[i].elapsed = 0.0
        out.append(log[i].to_json())
    return out


def assert_same_run(folder: Path, out: str, ref_dir: Path, ref_out: str) -> None:
    """Same run identity, printed table, summary rows, per-sample log, IoU arrays and plot."""
    assert folder.name == ref_dir.name  # batching / processes do not change the run's identity
    assert table(out) == table(ref_out) and len(table(out)) == 2
    rows = json.loads((folder / "summary.json").read_text())["rows"]
    ref_rows = json.loads((ref_dir / "summary.json").read_text())["rows"]
    assert [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows] == \
        [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in ref_rows]
    assert records(folder) == records(ref_dir)
    for rel in (f"ious/{DEFAULT_NAME}_GrabCut.npz", "plots/GrabCut.png"):
        assert (folder / rel).read_bytes() == (ref_dir / rel).read_bytes(), rel
