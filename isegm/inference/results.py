"""Evaluation results on disk: per-sample logs, resume state, summaries and the printed table.

Layout of one evaluation run folder (``evaluate_model.py``)::

    <run>/run.json                      options that determine the per-sample results
    <run>/eval.log                      log of every invocation (appended)
    <run>/results.txt                   the printed table, appended per invocation
    <run>/summary.csv, summary.json     one row per model x dataset (+ args, skipped datasets)
    <run>/ious/<model>_<dataset>.jsonl  one JSON line per finished sample (the resume state)
    <run>/ious/<model>_<dataset>.npz    the same IoUs as arrays, written when the pair is done
    <run>/plots/<dataset>.png           mIoU vs clicks, one curve per model

The jsonl files are the source of truth: every line is flushed and fsync'ed as soon as a
sample is done, so a killed run loses at most the sample in progress; a torn last line is cut
off when the file is reopened for resuming. The IoUs are stored as the decimal form of their
float32 values, so reading them back gives bit-identical float32 arrays and a resumed run
computes exactly the summary of an uninterrupted one (only the timings differ).

Metrics (SPEC Part II §3.5): NoC@t / NoF@t from :func:`isegm.inference.metrics.compute_noc_metric`
for t in 0.80..0.95 up to ``min(0.95, target)`` (a run that stops at the target cannot tell
the clicks needed for a higher one: those are ``None``); mIoU@k after click k (a sample that
stopped early keeps its last IoU); SPC = summed per-sample seconds (data loading included) /
clicks; Time = summed per-sample seconds.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import pickle
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isegm.inference.evaluation import SampleResult
from isegm.inference.metrics import compute_noc_metric, mean_iou_per_click, seconds_per_click
from isegm.utils.exp import default_file_mode

__all__ = [
    "NOC_THRESHOLDS",
    "TABLE_COLUMNS",
    "ResumeError",
    "SampleLog",
    "SampleRecord",
    "atomic_write_text",
    "format_hms",
    "format_table_header",
    "format_table_row",
    "load_ious_npz",
    "options_digest",
    "read_sample_log",
    "record_from_result",
    "safe_name",
    "save_ious_npz",
    "save_ious_pickle",
    "summarize",
    "write_summary",
]

logger = logging.getLogger(__name__)

NOC_THRESHOLDS = (0.80, 0.85, 0.90, 0.95)


class ResumeError(ValueError):
    """A run folder cannot be resumed with the given options (one-line message)."""


def safe_name(text: str) -> str:
    """A file-name-safe version of a model or dataset label."""
    return re.sub(r"[^A-Za-z0-9._+=-]+", "-", str(text)).strip("-") or "x"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; the other outputs are 0644
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def options_digest(options: Mapping[str, Any], length: int = 10) -> str:
    """Short stable hash of JSON-able options (key order does not matter)."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ------------------------------------------------------------------------ per-sample records
@dataclasses.dataclass
class SampleRecord:
    """One finished sample as stored in a jsonl line.

    Attributes:
        index: position in the dataset.
        name: file name (or id) of the sample, for humans.
        ious: per object, [n_clicks] float32 IoU after each click.
        clicks: per object, ``(y, x, is_positive)`` per click.
        elapsed: seconds spent on the sample (loading included).
        error: why the sample could not be read (then ``ious`` is empty).
        empty: indices of objects with an empty mask (not evaluated, not averaged).
    """

    index: int
    name: str = ""
    ious: list[np.ndarray] = dataclasses.field(default_factory=list)
    clicks: list[list[tuple[int, int, bool]]] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    error: str | None = None
    empty: list[int] = dataclasses.field(default_factory=list)

    def to_json(self) -> str:
        data: dict[str, Any] = {"index": self.index, "name": self.name}
        if self.error is not None:
            data["error"] = self.error
        else:
            # float(float32) is exact in float64 and JSON round-trips float64 exactly.
            data["ious"] = [[float(v) for v in np.asarray(x, np.float32)] for x in self.ious]
            data["clicks"] = [[[int(y), int(x), int(bool(p))] for y, x, p in c]
                              for c in self.clicks]
            if self.empty:
                data["empty"] = [int(j) for j in self.empty]
        data["elapsed"] = round(float(self.elapsed), 6)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> SampleRecord:
        data = json.loads(line)
        if not isinstance(data, dict) or "index" not in data:
            raise ValueError("not a sample record")
        return cls(
            index=int(data["index"]),
            name=str(data.get("name", "")),
            ious=[np.asarray(x, dtype=np.float32) for x in data.get("ious", [])],
            clicks=[[(int(y), int(x), bool(p)) for y, x, p in c]
                    for c in data.get("clicks", [])],
            elapsed=float(data.get("elapsed", 0.0)),
            error=data.get("error"),
            empty=[int(j) for j in data.get("empty", [])],
        )


def record_from_result(result: SampleResult, name: str) -> SampleRecord:
    """Turns an :class:`~isegm.inference.evaluation.SampleResult` into a storable record."""
    clicks = [[(int(round(float(c.coords[0]))), int(round(float(c.coords[1]))),
                bool(c.is_positive)) for c in obj] for obj in result.clicks]
    return SampleRecord(index=int(result.index), name=name,
                        ious=[np.asarray(x, np.float32) for x in result.ious],
                        clicks=clicks, elapsed=float(result.elapsed), error=result.error,
                        empty=list(result.empty))


def read_sample_log(path: Path, repair: bool = False) -> dict[int, SampleRecord]:
    """Records of a jsonl sample log, by index (a later line for an index wins).

    Reading stops at the first line that is not a complete record (a run killed while
    writing). With ``repair`` the file is truncated there, so appending continues cleanly.
    """
    path = Path(path)
    records: dict[int, SampleRecord] = {}
    if not path.is_file():
        return records
    good_end = 0
    bad = False
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                bad = True
                break
            try:
                rec = SampleRecord.from_json(raw.decode("utf-8"))
            except (ValueError, TypeError, KeyError, UnicodeDecodeError):
                bad = True
                break
            records[rec.index] = rec
            good_end += len(raw)
    if bad:
        size = path.stat().st_size
        logger.warning("%s: ignoring %d bytes after the last complete sample "
                       "(an interrupted write)", path, size - good_end)
        if repair:
            with open(path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
    return records


class SampleLog:
    """Append-only jsonl of finished samples of one model x dataset.

    Args:
        path: the ``.jsonl`` file.
        resume: keep (and return in :attr:`records`) what is already there; otherwise the file
            is started empty.
    """

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[int, SampleRecord] = (
            read_sample_log(self.path, repair=True) if resume else {}
        )
        self._file = open(self.path, "a" if resume else "w", encoding="utf-8")

    def append(self, record: SampleRecord) -> None:
        """Writes one record durably (flush + fsync) and keeps it in :attr:`records`."""
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records[record.index] = record

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> SampleLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ------------------------------------------------------------------------------- summaries
def _none_if_nan(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def summarize(
    records: Sequence[SampleRecord], n_clicks: int, target_iou: float
) -> dict[str, Any]:
    """Metrics of one model x dataset from its sample records (in dataset order).

    Returns:
        dict with ``noc_80 .. noc_95``, ``nof_80 .. nof_95`` (None above ``min(0.95, target)``),
        ``noc_target``/``nof_target``, ``miou_1``, ``miou_5`` (None if fewer clicks),
        ``miou_per_click`` (list), ``spc``, ``time_s``, ``samples`` (objects evaluated),
        ``images`` (samples read), ``errors`` and ``error_names``, ``empty_objects`` and
        ``empty_names`` (objects with an empty mask, left out of every average).
    """
    all_ious = [ious for r in records if r.error is None for ious in r.ious]
    row: dict[str, Any] = {}
    upto = min(0.95, target_iou) + 0.001
    valid = [t for t in NOC_THRESHOLDS if t <= upto]
    noc = compute_noc_metric(all_ious, valid, max_clicks=n_clicks) if valid else None
    for t in NOC_THRESHOLDS:
        key = f"{int(round(t * 100))}"
        if noc is not None and t in valid:
            i = valid.index(t)
            row[f"noc_{key}"] = _none_if_nan(float(noc.noc[i]))
            row[f"nof_{key}"] = int(noc.nof[i]) if all_ious else None
        else:
            row[f"noc_{key}"] = None
            row[f"nof_{key}"] = None
    if target_iou <= 1.0:
        at_target = compute_noc_metric(all_ious, [target_iou], max_clicks=n_clicks)
        row["noc_target"] = _none_if_nan(float(at_target.noc[0]))
        row["nof_target"] = int(at_target.nof[0]) if all_ious else None
    else:
        row["noc_target"] = row["nof_target"] = None
    curve = mean_iou_per_click(all_ious, n_clicks) if n_clicks > 0 else np.zeros(0)
    row["miou_per_click"] = [_none_if_nan(float(v)) for v in curve]
    row["miou_1"] = row["miou_per_click"][0] if n_clicks >= 1 else None
    row["miou_5"] = row["miou_per_click"][4] if n_clicks >= 5 else None
    time_s = float(sum(r.elapsed for r in records))
    row["spc"] = seconds_per_click(all_ious, time_s) if all_ious else None
    row["time_s"] = time_s
    row["time"] = format_hms(time_s)
    row["samples"] = len(all_ious)
    row["images"] = sum(r.error is None for r in records)
    row["errors"] = sum(r.error is not None for r in records)
    row["error_names"] = [r.name for r in records if r.error is not None]
    row["empty_objects"] = sum(len(r.empty) for r in records if r.error is None)
    row["empty_names"] = [r.name if len(r.ious) + len(r.empty) == 1 else f"{r.name}#{j}"
                          for r in records if r.error is None for j in r.empty]
    return row


def format_hms(seconds: float) -> str:
    """``H:MM:SS`` (hours not wrapped at 24)."""
    s = int(round(max(0.0, float(seconds))))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# ------------------------------------------------------------------------------ the table
def _num(fmt: str):
    def f(v: Any) -> str:
        return "-" if v is None else format(v, fmt)
    return f


#: (header, row key, formatter) of the printed table.
TABLE_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("NoC@85", "noc_85", _num(".2f")),
    ("NoC@90", "noc_90", _num(".2f")),
    ("NoF@85", "nof_85", _num("d")),
    ("NoF@90", "nof_90", _num("d")),
    ("mIoU@1", "miou_1", _num(".2%")),
    ("mIoU@5", "miou_5", _num(".2%")),
    ("SPC,s", "spc", _num(".3f")),
    ("Time", "time", str),
    ("#samples", "samples", str),
)


def _cells(model: str, dataset: str, row: Mapping[str, Any] | None) -> list[str]:
    if row is None:
        return [model, dataset] + [h for h, _, _ in TABLE_COLUMNS]
    return [model, dataset] + [fmt(row.get(key)) for _, key, fmt in TABLE_COLUMNS]


def _widths(model_width: int, dataset_width: int) -> list[int]:
    return [max(model_width, 5), max(dataset_width, 7)] + [
        max(len(h), 8) for h, _, _ in TABLE_COLUMNS
    ]


def _join(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))) + " |"


def format_table_header(model_width: int = 5, dataset_width: int = 7) -> str:
    """Header line + separator line of the results table."""
    widths = _widths(model_width, dataset_width)
    head = _join(_cells("Model", "Dataset", None), widths)
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return head + "\n" + sep


def format_table_row(model: str, dataset: str, row: Mapping[str, Any],
                     model_width: int = 5, dataset_width: int = 7) -> str:
    """One results-table line for a model x dataset summary row."""
    return _join(_cells(model, dataset, row), _widths(model_width, dataset_width))


# -------------------------------------------------------------------------- summary files
CSV_FIELDS = (
    "model", "dataset",
    "noc_80", "noc_85", "noc_90", "noc_95", "nof_80", "nof_85", "nof_90", "nof_95",
    "noc_target", "nof_target", "miou_1", "miou_5", "spc", "time_s", "time",
    "samples", "images", "errors", "empty_objects", "reused_samples", "checkpoint",
    "inference_size",
)


def write_summary(run_dir: Path, rows: Sequence[Mapping[str, Any]], args: Mapping[str, Any],
                  skipped: Sequence[Mapping[str, str]] = (),
                  extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """(Re)writes ``summary.csv`` and ``summary.json`` atomically with all rows so far.

    Returns:
        (csv path, json path).
    """
    run_dir = Path(run_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS})
    csv_path, json_path = run_dir / "summary.csv", run_dir / "summary.json"
    atomic_write_text(csv_path, buf.getvalue())
    payload = {"rows": list(rows), "skipped_datasets": list(skipped),
               "args": dict(args), **dict(extra or {})}
    atomic_write_text(json_path, json.dumps(payload, indent=2, default=str) + "\n")
    return csv_path, json_path


def save_ious_npz(path: Path, records: Iterable[SampleRecord], n_clicks: int) -> Path:
    """Per-object IoU arrays of the records as one ``.npz``.

    Arrays: ``ious`` [N, n_clicks] float32 (NaN after the object's last click),
    ``num_clicks`` [N], ``sample_index`` [N], ``object_index`` [N]; ``names`` [N] str.
    """
    rows, lengths, sample_index, object_index, names = [], [], [], [], []
    for rec in records:
        if rec.error is not None:
            continue
        evaluated = [j for j in range(len(rec.ious) + len(rec.empty)) if j not in rec.empty]
        for j, ious in zip(evaluated, rec.ious):
            padded = np.full(n_clicks, np.nan, np.float32)
            k = min(len(ious), n_clicks)
            padded[:k] = ious[:k]
            rows.append(padded)
            lengths.append(len(ious))
            sample_index.append(rec.index)
            object_index.append(j)
            names.append(rec.name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ious=np.array(rows, np.float32).reshape(len(rows), n_clicks),
             num_clicks=np.array(lengths, np.int64), sample_index=np.array(sample_index, np.int64),
             object_index=np.array(object_index, np.int64), names=np.array(names, dtype=str))
    os.replace(tmp, path)
    return path


def load_ious_npz(path: Path) -> list[np.ndarray]:
    """The per-object IoU arrays saved by :func:`save_ious_npz` (padding removed)."""
    with np.load(path) as data:
        return [row[:n] for row, n in zip(data["ious"], data["num_clicks"])]


def save_ious_pickle(path: Path, records: Iterable[SampleRecord]) -> Path:
    """The reference's ``--save-ious`` file: a pickled list of float32 IoU arrays."""
    all_ious = [ious for r in records if r.error is None for ious in r.ious]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(all_ious, f)
    return path
