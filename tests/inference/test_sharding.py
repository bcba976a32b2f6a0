"""Evaluation over 2 CPU processes (``isegm/inference/sharding.py``): ``torchrun`` and
``evaluate_model.py --nproc 2`` give exactly the summary, per-sample log, IoU arrays and plot of
one process, and a run whose rank 1 was killed (kill -9) resumes to the same results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_run_checks import (  # tests/inference is on sys.path
    DEFAULT_NAME,
    REPO,
    assert_same_run,
    records,
    run_folder,
    skip_without_default_or_grabcut,
)

from isegm.inference.results import SampleRecord, read_sample_log
from isegm.inference.sharding import Shard, ShardedLog

SCRIPT = REPO / "evaluate_model.py"
N = 6


def _args(grabcut_dir: Path, logs: Path) -> list[str]:
    # the built-in default model; batch 2 in each process
    return ["--datasets", "GrabCut", "--dataset-path", f"GrabCut={grabcut_dir}",
            "--limit", str(N), "--n-clicks", "3", "--target-iou", "0.9", "--cpu",
            "--threads", "1", "--batch-size", "2", "--logs-path", str(logs)]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, **kw)


def _assert_same(run_dir: Path, out: str, ref_dir: Path, ref_out: str) -> None:
    assert_same_run(run_dir, out, ref_dir, ref_out)
    assert len(records(run_dir)) == N
    csv, ref_csv = ((d / "summary.csv").read_text().splitlines() for d in (run_dir, ref_dir))
    assert csv[0] == ref_csv[0] and len(csv) == len(ref_csv) == 2
    assert not list((run_dir / "ious").glob("*.rank*.jsonl"))  # merged and removed


@pytest.fixture(scope="module")
def one_process(grabcut_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    skip_without_default_or_grabcut(grabcut_dir)
    logs = tmp_path_factory.mktemp("one")
    res = _run([sys.executable, str(SCRIPT), *_args(grabcut_dir, logs)])
    assert res.returncode == 0, res.stderr
    return run_folder(logs), res.stdout


def test_torchrun_two_processes_equal_one(grabcut_dir, tmp_path, one_process) -> None:
    logs = tmp_path / "torchrun"
    res = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2", str(SCRIPT), *_args(grabcut_dir, logs)])
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = run_folder(logs)
    _assert_same(run_dir, res.stdout, *one_process)
    # each rank evaluated its share (its own log file) and rank 1 logged to its own file
    assert (run_dir / "eval.rank1.log").is_file()
    rank1 = (run_dir / "eval.rank1.log").read_text()
    assert f"{DEFAULT_NAME} GrabCut" in rank1


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def _rank1_log_size(logs: Path) -> int:
    """Bytes in rank 1's per-sample log (0 while there is none; rank 0 may be deleting it)."""
    try:
        return sum(p.stat().st_size for p in logs.glob("*/ious/*.rank1.jsonl"))
    except FileNotFoundError:
        return 0


def _simulate_kill_of_rank_1(run_dir: Path) -> None:
    """The files a run leaves when rank 1 is killed after its first sample, made from a run
    whose merged log was written before the kill landed: rank 0 did two samples, rank 1 one
    and a torn line; no merged log, summary, arrays or plot."""
    merged = run_dir / "ious" / f"{DEFAULT_NAME}_GrabCut.jsonl"
    lines = merged.read_text().splitlines(keepends=True)
    merged.with_name(f"{merged.stem}.rank0.jsonl").write_text(lines[0] + lines[2])
    merged.with_name(f"{merged.stem}.rank1.jsonl").write_text(lines[1] + '{"index": 3, "io')
    merged.unlink()
    for rel in ("summary.json", "summary.csv", f"ious/{DEFAULT_NAME}_GrabCut.npz",
                "plots/GrabCut.png"):
        (run_dir / rel).unlink(missing_ok=True)  # rank 0 may have been stopped before them


def test_nproc_resumes_after_rank_1_is_killed(grabcut_dir, tmp_path, one_process) -> None:
    """kill -9 of rank 1 once it has logged a sample, then --resume: the results of one
    process. Whenever the kill lands (even after the last sample, before the merge) the resumed
    run must give them; if the run ended before the kill could land (or rank 1 got no sample),
    the killed state is made from its files instead, so the test never depends on timing."""
    logs = tmp_path / "nproc"
    argv = [sys.executable, str(SCRIPT), *_args(grabcut_dir, logs), "--nproc", "2"]
    launcher = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    killed = False
    try:
        deadline = time.monotonic() + 600  # a safety net only: the loop waits for a state
        while time.monotonic() < deadline and launcher.poll() is None:
            rank1 = [p for p in _children(launcher.pid) if _rank_of(p) == 1]
            if rank1 and _rank1_log_size(logs) > 0:
                os.kill(rank1[0], signal.SIGKILL)  # after its first finished sample
                killed = True
                break
            time.sleep(0.05)
        code = launcher.wait(timeout=600)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    run_dir = run_folder(logs)
    if list((run_dir / "ious").glob("*.rank1.jsonl")):  # killed before the merge
        assert killed and code != 0  # the launcher stopped rank 0 and failed
        assert not (run_dir / "summary.json").exists()
    else:  # rank 0 had merged the logs before the kill landed (a loaded machine)
        _simulate_kill_of_rank_1(run_dir)
    partial = read_sample_log(next((run_dir / "ious").glob("*.rank1.jsonl")))
    assert 1 <= len(partial) < N

    res = _run(argv + ["--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_same(run_dir, res.stdout, *one_process)
    row = json.loads((run_dir / "summary.json").read_text())["rows"][0]
    assert row["reused_samples"] >= len(partial) and row["evaluated_samples"] < N


def test_nproc_resume_after_the_last_sample_before_the_merge(grabcut_dir, tmp_path,
                                                             one_process) -> None:
    """A run killed when every sample was in the rank logs but not yet merged (the state a
    kill lands in on a loaded machine): the resumed run evaluates nothing and still writes the
    summary of one process, the evaluation settings included."""
    ref_dir, _ = one_process
    logs = tmp_path / "merge"
    run_dir = logs / ref_dir.name
    shutil.copytree(ref_dir, run_dir)
    merged = run_dir / "ious" / f"{DEFAULT_NAME}_GrabCut.jsonl"
    lines = merged.read_text().splitlines(keepends=True)
    merged.with_name(f"{merged.stem}.rank0.jsonl").write_text("".join(lines[0::2]))
    merged.with_name(f"{merged.stem}.rank1.jsonl").write_text("".join(lines[1::2]))
    merged.unlink()
    for rel in ("summary.json", "summary.csv", f"ious/{DEFAULT_NAME}_GrabCut.npz",
                "plots/GrabCut.png", "results.txt"):
        (run_dir / rel).unlink(missing_ok=True)

    argv = [sys.executable, str(SCRIPT), *_args(grabcut_dir, logs), "--nproc", "2", "--resume"]
    res = _run(argv)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_same(run_dir, res.stdout, *one_process)
    row = json.loads((run_dir / "summary.json").read_text())["rows"][0]
    assert row["evaluated_samples"] == 0 and row["eval_settings"]["family"] == "project"


class _NoBarrier(Shard):
    """A rank without its process group (the other ranks are done)."""

    def barrier(self) -> None:
        pass


def test_sharded_log_merges_in_dataset_order(tmp_path) -> None:
    """Rank logs and the merged log of an earlier run (another number of ranks) give the done
    samples; rank 0 merges them in index order and removes the rank logs."""
    path = tmp_path / "pair.jsonl"
    path.write_text(SampleRecord(index=1, name="b").to_json() + "\n")
    path.with_name("pair.rank0.jsonl").write_text(SampleRecord(index=4, name="e").to_json() + "\n")
    path.with_name("pair.rank2.jsonl").write_text(SampleRecord(index=0, name="a").to_json() + "\n")
    log = ShardedLog(path, resume=True, shard=_NoBarrier(rank=0, world=2))
    assert sorted(log.records) == [0, 1, 4]
    log.append(SampleRecord(index=2, name="c"))
    merged = log.merge()
    assert sorted(merged) == [0, 1, 2, 4]
    lines = [SampleRecord.from_json(x) for x in path.read_text().splitlines()]
    assert [(r.index, r.name) for r in lines] == [(0, "a"), (1, "b"), (2, "c"), (4, "e")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair.jsonl"]

    one = ShardedLog(tmp_path / "single.jsonl", resume=False, shard=Shard())
    one.append(SampleRecord(index=0, name="x"))
    assert one.merge()[0].name == "x" and (tmp_path / "single.jsonl").is_file()
    assert list(one.claim([3, 5])) == [3, 5]


def test_ranks_claim_each_sample_once(tmp_path) -> None:
    """Two ranks claiming from the shared counter, in any interleaving, split the samples
    without a gap or a repeat; rank 0 removes a killed run's counter when the pair starts."""
    path = tmp_path / "pair.jsonl"
    path.with_name("pair.claims").write_bytes(b"...")  # left by a killed run
    rank0 = ShardedLog(path, resume=True, shard=_NoBarrier(rank=0, world=2))
    rank1 = ShardedLog(path, resume=True, shard=_NoBarrier(rank=1, world=2))
    todo = [2, 3, 5, 7, 11, 13, 17]
    a, b = rank0.claim(todo), rank1.claim(todo)
    got0, got1 = [next(a)], [next(b), next(b), next(b)]
    got0 += list(a)
    got1 += list(b)
    assert sorted(got0 + got1) == todo and len(got0) == 4 and len(got1) == 3
    assert got0[0] == 2 and got1[0] == 3
    rank0.merge()
    assert not path.with_name("pair.claims").exists()
