"""evaluate_model.py end to end on a few GrabCut images with a tiny random MST (CPU).

Most runs call ``main(argv)`` in this process (no interpreter start-up); the exit-code,
no-traceback and kill -9 checks run the script in a subprocess. ``--threads 1`` keeps the
runs fast on a loaded 2-core machine (2 threads competing with other processes are ~20x slower).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from isegm.inference.metrics import compute_noc_metric, mean_iou_per_click
from isegm.inference.results import (
    SampleLog,
    SampleRecord,
    format_hms,
    load_ious_npz,
    read_sample_log,
    summarize,
)
from isegm.inference.utils import DEFAULT_MODEL_RECIPE
from isegm.model.build import build_model
from isegm.model.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "evaluate_model.py"
TIMING_KEYS = {"spc", "time_s", "time", "reused_samples", "evaluated_samples"}
SEED_CMD = ["NoBRS", "--gpu=0", "--checkpoint=weights/mst-3s-slim-448-base.pth",
            "--datasets=DAVIS,LoveDASMALL,LoveDAMEDIUM,LoveDALARGE,LoveDAHUGE", "--cf-n=3",
            "--acf", "--n-clicks=20", "--target-iou=0.9", "--inference_size=448"]


def _load_script():
    spec = importlib.util.spec_from_file_location("evaluate_model_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ev = _load_script()


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ev.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def run_script(argv: list[str], cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, argv)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=600, **kw)  # safety net


def _tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_checkpoint(path, build_model("mst_tiny_224"))


@pytest.fixture(scope="module")
def env(tmp_path_factory, grabcut_dir: Path) -> dict:
    if not grabcut_dir.is_dir():
        pytest.skip(f"GrabCut not found at {grabcut_dir}")
    root = tmp_path_factory.mktemp("eval")
    config = root / "config.yml"
    config.write_text(yaml.safe_dump({
        "INTERACTIVE_MODELS_PATH": str(root / "weights"),
        "EXPS_PATH": str(root / "experiments"),
        "DAVIS_PATH": str(root / "no" / "DAVIS"),
        "IS_LoveDA_PATH": str(root / "no" / "LoveDA"),
    }))
    ckpt = _tiny_checkpoint(root / "weights" / "tiny.pth")
    return {"root": root, "config": config, "ckpt": ckpt, "grabcut": grabcut_dir}


def base_args(env: dict, logs: Path, limit: int = 3, n_clicks: int = 3) -> list:
    return ["NoBRS", "--checkpoint", env["ckpt"], "--datasets", "GrabCut",
            "--dataset-path", f"GrabCut={env['grabcut']}", "--limit", limit,
            "--n-clicks", n_clicks, "--inference_size", 224, "--target-iou", 0.9,
            "--cpu", "--threads", 1, "--config-path", env["config"], "--logs-path", logs]


def only_run_dir(logs: Path) -> Path:
    dirs = [p for p in logs.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def results_of(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "summary.json").read_text())["rows"]


def without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def baseline(env: dict) -> dict:
    """One uninterrupted run (3 samples, 3 clicks, with --vis) shared by several tests."""
    logs = env["root"] / "baseline"
    code, out, err = run_main(base_args(env, logs) + ["--vis"])
    assert code == 0, err
    return {"code": code, "out": out, "err": err, "run_dir": only_run_dir(logs)}


# ------------------------------------------------------------------------------- end to end
def test_end_to_end_table_files_and_consistency(baseline: dict) -> None:
    run_dir, out = baseline["run_dir"], baseline["out"]
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    for col in ("Model", "Dataset", "NoC@85", "NoC@90", "NoF@85", "NoF@90", "mIoU@1",
                "mIoU@5", "SPC,s", "Time", "#samples"):
        assert col in header
    row_line = next(line for line in lines if line.startswith("| tiny"))
    cells = [c.strip() for c in row_line.strip("|").split("|")]
    assert cells[:2] == ["tiny", "GrabCut"] and cells[-1] == "3"

    (row,) = results_of(run_dir)
    assert row["samples"] == 3 and row["images"] == 3 and row["errors"] == 0
    assert cells[2] == f"{row['noc_85']:.2f}" and cells[3] == f"{row['noc_90']:.2f}"
    assert cells[4] == str(row["nof_85"]) and cells[5] == str(row["nof_90"])
    assert cells[6] == f"{row['miou_1']:.2%}" and cells[7] == "-"  # 3 clicks: no mIoU@5
    assert row["noc_95"] is None  # target 0.9 cannot tell NoC@95
    assert cells[9] == row["time"] and row["time"].count(":") == 2

    # per-sample arrays: npz and jsonl agree, and the summary is recomputed from them
    npz = run_dir / "ious" / "tiny_GrabCut.npz"
    ious = load_ious_npz(npz)
    records = read_sample_log(run_dir / "ious" / "tiny_GrabCut.jsonl")
    assert sorted(records) == [0, 1, 2] and len(ious) == 3
    for rec, arr in zip((records[i] for i in range(3)), ious):
        np.testing.assert_array_equal(rec.ious[0], arr)
        assert arr.dtype == np.float32 and 1 <= len(arr) <= 3
        assert len(rec.clicks[0]) == len(arr) and rec.name.endswith((".jpg", ".bmp", ".JPG"))
    noc = compute_noc_metric(ious, [0.85, 0.90], max_clicks=3)
    assert noc.noc.tolist() == pytest.approx([row["noc_85"], row["noc_90"]])
    assert noc.nof.tolist() == [row["nof_85"], row["nof_90"]]
    assert mean_iou_per_click(ious, 3).tolist() == pytest.approx(row["miou_per_click"])

    csv_text = (run_dir / "summary.csv").read_text().splitlines()
    assert csv_text[0].startswith("model,dataset,noc_80,noc_85,noc_90")
    assert csv_text[1].startswith("tiny,GrabCut,") and len(csv_text) == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["args"]["n_clicks"] == 3 and summary["skipped_datasets"] == []

    png = cv2.imread(str(run_dir / "plots" / "GrabCut.png"))
    assert png is not None and png.shape[0] > 100
    vis = sorted((run_dir / "vis" / "tiny" / "GrabCut").glob("*.jpg"))
    assert len(vis) == 3 and cv2.imread(str(vis[0])) is not None
    assert "| tiny" in (run_dir / "results.txt").read_text()
    assert (run_dir / "eval.log").is_file() and (run_dir / "run.json").is_file()


def test_cascade_forward_changes_predictions(env: dict, baseline: dict) -> None:
    # through the predictor: the same click gives another map after 2 extra passes
    torch.set_num_threads(1)
    model = ev.load_is_model(env["ckpt"], "cpu")
    sample = ev.get_eval_dataset("GrabCut", {}, path_override=env["grabcut"]).get_sample(0)
    from isegm.inference.clicker import Clicker

    probs = {}
    for cf_n in (0, 2):
        args = ev.parse_args(["--cf-n", str(cf_n), "--inference_size", "224"])
        predictor = ev.build_predictor(model, torch.device("cpu"), args)
        predictor.set_input_image(sample.image)
        clicker = Clicker(gt_mask=sample.gt_mask(0))
        clicker.make_next_click(np.zeros(sample.image.shape[:2], bool))
        probs[cf_n] = predictor.get_prediction(clicker)
        assert predictor.last_cascade_passes == cf_n + 1
    assert np.abs(probs[0] - probs[2]).max() > 1e-4

    # end to end: its own run folder, and different IoUs than the --cf-n 0 baseline
    logs = env["root"] / "cascade"
    code, _, err = run_main(base_args(env, logs) + ["--cf-n", 2])
    assert code == 0, err
    run_dir = only_run_dir(logs)
    assert run_dir.name != baseline["run_dir"].name
    with_cf = load_ious_npz(run_dir / "ious" / "tiny_GrabCut.npz")
    without = load_ious_npz(baseline["run_dir"] / "ious" / "tiny_GrabCut.npz")
    assert any(len(a) != len(b) or not np.array_equal(a, b) for a, b in zip(with_cf, without))


# ----------------------------------------------------------------------------------- resume
def test_resume_after_kill_gives_the_same_summary(env: dict, baseline: dict) -> None:
    logs = env["root"] / "killed"
    argv = base_args(env, logs)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, argv)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jsonl = None
    deadline = time.monotonic() + 600  # a safety net only: the loop waits for a state

    def first_sample() -> Path | None:
        found = list(logs.glob("*/ious/tiny_GrabCut.jsonl")) if logs.is_dir() else []
        return found[0] if found and b"\n" in found[0].read_bytes() else None

    try:
        while time.monotonic() < deadline and proc.poll() is None:
            jsonl = first_sample()
            if jsonl is not None:  # one complete sample
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    jsonl = jsonl or first_sample()  # it may have finished between two looks (a loaded machine)
    assert jsonl is not None, "the run wrote no sample"
    lines = jsonl.read_bytes().splitlines(keepends=True)
    if proc.returncode != -signal.SIGKILL or len(lines) >= 3:
        # finished before the kill landed: simulate the kill (1 sample + a torn line)
        jsonl.write_bytes(lines[0] + b'{"index": 1, "ious": [[0.')
    print("killed for real" if proc.returncode == -signal.SIGKILL and len(lines) < 3
          else "kill simulated", len(lines))
    before = jsonl.read_bytes()
    n_done = before.count(b"\n")
    assert 1 <= n_done < 3

    code, _, err = run_main(argv + ["--resume"])
    assert code == 0, err
    assert f"{n_done} of 3 samples already done, {3 - n_done} to evaluate" in err
    after = jsonl.read_bytes()
    complete = before[: before.rfind(b"\n") + 1]
    assert after.startswith(complete)  # finished samples kept as they were, not redone
    assert after.count(b"\n") == 3
    (row,) = results_of(jsonl.parent.parent)
    (full,) = results_of(baseline["run_dir"])
    assert row["reused_samples"] == n_done and row["evaluated_samples"] == 3 - n_done
    assert without_timing(row) == without_timing(full)


def test_resume_after_the_last_sample_gives_the_same_summary(env: dict, baseline: dict,
                                                            tmp_path: Path) -> None:
    """Killed after its last sample but before the summary (a rank of --nproc too): the
    resumed run evaluates nothing, and its summary still names the evaluation settings."""
    logs = tmp_path / "logs"
    shutil.copytree(baseline["run_dir"], logs / baseline["run_dir"].name)
    run_dir = only_run_dir(logs)
    for name in ("summary.json", "summary.csv"):
        (run_dir / name).unlink()
    code, _, err = run_main(base_args(env, logs) + ["--resume"])
    assert code == 0, err
    assert "3 of 3 samples already done, 0 to evaluate" in err
    (row,) = results_of(run_dir)
    (full,) = results_of(baseline["run_dir"])
    assert row["evaluated_samples"] == 0 and row["eval_settings"]["family"] == "project"
    assert without_timing(row) == without_timing(full)


def test_resume_does_not_recompute_finished_samples(env: dict, baseline: dict,
                                                    tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(baseline["run_dir"], logs / baseline["run_dir"].name)
    run_dir = only_run_dir(logs)
    jsonl = run_dir / "ious" / "tiny_GrabCut.jsonl"
    recs = read_sample_log(jsonl)
    recs[0].ious = [np.float32([0.5, 0.95])]  # a result the model did not produce
    jsonl.write_text("".join(recs[i].to_json() + "\n" for i in range(3)))

    code, out, err = run_main(base_args(env, logs) + ["--resume"])
    assert code == 0, err
    assert "3 of 3 samples already done, 0 to evaluate" in err
    (row,) = results_of(run_dir)
    expected = summarize([recs[i] for i in range(3)], 3, 0.9)
    assert row["noc_90"] == pytest.approx(expected["noc_90"])
    assert row["evaluated_samples"] == 0
    assert len(load_ious_npz(run_dir / "ious" / "tiny_GrabCut.npz")[0]) == 2

    # a fresh run (no --resume) moves the old folder aside instead of overwriting it
    code, _, err = run_main(base_args(env, logs))
    assert code == 0, err
    assert any(p.name.startswith(run_dir.name + ".prev-") for p in logs.iterdir())


def test_resume_folder_with_other_options_is_refused(env: dict, baseline: dict) -> None:
    code, out, err = run_main(base_args(env, env["root"] / "x", n_clicks=2)
                              + ["--resume", baseline["run_dir"]])
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: --resume")
    assert "n_clicks" in err and "Traceback" not in err


# ------------------------------------------------------------------------------- bad inputs
def test_missing_dataset_is_reported_and_skipped(env: dict, tmp_path: Path) -> None:
    argv = base_args(env, tmp_path / "logs", limit=1, n_clicks=1)
    argv[argv.index("GrabCut")] = "GrabCut,DAVIS"
    argv += ["--dataset-path", f"DAVIS={tmp_path / 'nowhere'}"]
    code, out, err = run_main(argv)
    assert code == 0, err
    skip_lines = [line for line in err.splitlines() if "skipping dataset DAVIS" in line]
    assert len(skip_lines) == 1 and "nowhere" in skip_lines[0]
    assert "Skipped datasets: DAVIS" in out
    run_dir = only_run_dir(tmp_path / "logs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["name"] for s in summary["skipped_datasets"]] == ["DAVIS"]
    assert [r["dataset"] for r in summary["rows"]] == ["GrabCut"]

    # nothing left to evaluate: exit code 1, no run folder
    argv = base_args(env, tmp_path / "logs2", limit=1, n_clicks=1)
    argv[argv.index("GrabCut")] = "DAVIS"
    code, out, err = run_main(argv)
    assert code == 1 and "Nothing to evaluate" in out and "Traceback" not in err
    assert not (tmp_path / "logs2").exists()


def test_corrupt_image_is_reported_and_the_run_goes_on(env: dict, tmp_path: Path) -> None:
    src, dst = env["grabcut"], tmp_path / "GrabCut"
    images = sorted((src / "data_GT").iterdir())[:3]
    (dst / "data_GT").mkdir(parents=True)
    (dst / "boundary_GT").mkdir()
    for img in images:
        shutil.copy(img, dst / "data_GT" / img.name)
        mask = next((src / "boundary_GT").glob(img.stem + ".*"))
        shutil.copy(mask, dst / "boundary_GT" / mask.name)
    bad = dst / "data_GT" / images[1].name
    bad.write_bytes(b"this is not an image")

    env2 = {**env, "grabcut": dst}
    code, out, err = run_main(base_args(env2, tmp_path / "logs", n_clicks=1))
    assert code == 0, err
    assert images[1].name in err and "1 unreadable sample(s)" in err
    (row,) = results_of(only_run_dir(tmp_path / "logs"))
    assert row["errors"] == 1 and row["samples"] == 2 and row["images"] == 2
    assert row["error_names"] == [images[1].name]
    assert "| tiny" in out


def test_bad_checkpoints_give_one_line_and_exit_code_2(env: dict, tmp_path: Path,
                                                       monkeypatch) -> None:
    logs = tmp_path / "logs"
    # missing file, as a real process: exit code 2, one line, no traceback
    argv = base_args(env, logs)
    argv[argv.index(env["ckpt"])] = tmp_path / "missing.pth"
    proc = run_script(argv)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: checkpoint not found")
    assert "Traceback" not in proc.stderr + proc.stdout

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    mae = tmp_path / "mae.pth"
    torch.save({"model": {"pos_embed": torch.zeros(1)}}, mae)
    for bad in (garbage, mae):
        argv[argv.index(next(a for a in argv if str(a).endswith(".pth")))] = bad
        code, out, err = run_main(argv)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1 and str(bad) in errors[0], err
        assert "Traceback" not in err

    # no --checkpoint and no built-in default model: how to make it
    monkeypatch.setattr(ev, "REPO", tmp_path)
    argv = base_args(env, logs)
    i = argv.index("--checkpoint")
    del argv[i:i + 2]
    code, out, err = run_main(argv)
    assert code == 2 and DEFAULT_MODEL_RECIPE in err and "python train.py models/" in err

    code, out, err = run_main(["RGB-BRS", "--checkpoint", env["ckpt"]])
    assert code == 2 and "only NoBRS exists" in err


def test_seed_command_line_parses_and_exits_cleanly_without_datasets(env: dict,
                                                                     tmp_path: Path) -> None:
    args = ev.parse_args(SEED_CMD)
    assert (args.mode, args.gpus, args.cf_n, args.acf, args.n_clicks) == ("NoBRS", "0", 3,
                                                                          True, 20)
    assert args.inference_size == 448 and args.effective_target == pytest.approx(0.9)
    assert args.dataset_names == ["DAVIS", "LoveDASMALL", "LoveDAMEDIUM", "LoveDALARGE",
                                  "LoveDAHUGE"]

    _tiny_checkpoint(tmp_path / "weights" / "mst-3s-slim-448-base.pth")
    proc = run_script(SEED_CMD + ["--config-path", env["config"], "--logs-path",
                                  tmp_path / "logs"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("Nothing to evaluate")
    skipped = [line for line in proc.stderr.splitlines() if "skipping dataset" in line]
    assert len(skipped) == 5
    if not torch.cuda.is_available():
        assert sum("CUDA is not available" in line for line in proc.stderr.splitlines()) == 1
    assert not (tmp_path / "logs").exists()


# ------------------------------------------------------------------- several checkpoints
def test_checkpoint_folder_and_list_print_ious_save_ious(env: dict, tmp_path: Path) -> None:
    folder = tmp_path / "ckpts"
    _tiny_checkpoint(folder / "a.pth", seed=1)
    _tiny_checkpoint(folder / "b.pth", seed=2)
    argv = base_args(env, tmp_path / "logs", limit=1, n_clicks=2)
    argv[argv.index(env["ckpt"])] = folder
    code, out, err = run_main(argv + ["--print-ious", "--save-ious"])
    assert code == 0, err
    run_dir = only_run_dir(tmp_path / "logs")
    rows = results_of(run_dir)
    assert [r["model"] for r in rows] == ["a", "b"]
    assert out.count("mIoU@1=") == 2 and out.count("mIoU@2=") == 2
    assert all(len(r["miou_per_click"]) == 2 for r in rows)
    assert len(list((run_dir / "ious").glob("*.pkl"))) == 2
    assert (run_dir / "plots" / "GrabCut.png").is_file()

    # the comma-separated form names the same run
    argv[argv.index(folder)] = f"{folder / 'a.pth'},{folder / 'b.pth'}"
    code, _, err = run_main(argv + ["--print-ious", "--resume"])
    assert code == 0 and "1 of 1 samples already done" in err


# ----------------------------------------------------------------------------- results unit
def test_sample_log_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with SampleLog(path, resume=False) as log:
        log.append(SampleRecord(0, "x.jpg", [np.float32([0.25, 0.9])], [[(1, 2, True)] * 2]))
    with open(path, "a") as f:
        f.write('{"index": 1, "io')
    with SampleLog(path, resume=True) as log:
        assert list(log.records) == [0]
        np.testing.assert_array_equal(log.records[0].ious[0], np.float32([0.25, 0.9]))
        log.append(SampleRecord(1, "y.jpg", error="cannot decode image y.jpg"))
    recs = read_sample_log(path)
    assert recs[1].error and recs[1].ious == [] and os.path.getsize(path) > 0
    row = summarize([recs[0], recs[1]], n_clicks=2, target_iou=0.9)
    assert row["noc_90"] == 2 and row["nof_90"] == 1 and row["errors"] == 1
    assert format_hms(3725.4) == "1:02:05"


# ------------------------------------------------------------------ reliability (issue 12)
def _wait_for(predicate, proc: subprocess.Popen, what: str, safety_s: float = 600) -> None:
    """Polls until ``predicate()``; the deadline is only a safety net against a hung test."""
    deadline = time.monotonic() + safety_s
    while not predicate():
        assert proc.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {safety_s} s"
        time.sleep(0.01)


def test_a_second_run_on_a_live_run_folder_stops_with_one_line(env: dict, baseline: dict,
                                                               tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    argv = base_args(env, logs, limit=50)
    first = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, argv)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = logs / baseline["run_dir"].name / ".lock"
    try:
        _wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid),
                  first, "lock file with its pid")  # run.json may not be written yet
        first.send_signal(signal.SIGSTOP)  # a live run, frozen while the second one tries
        for extra in ([], ["--resume"], ["--resume", lock.parent]):
            code, out, err = run_main(base_args(env, logs, limit=2) + extra)
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            assert code == 2 and len(errors) == 1, err
            assert str(lock.parent) in errors[0] and f"pid {first.pid}" in errors[0]
            assert "Traceback" not in err
        # the live folder was neither moved aside nor written into
        assert [p.name for p in logs.iterdir()] == [lock.parent.name]
        assert not (lock.parent / "summary.json").exists()
    finally:
        first.kill()  # kill -9: the kernel releases its lock
        first.wait()
    code, out, err = run_main(base_args(env, logs, limit=2) + ["--resume"])
    assert code == 0, err
    (row,) = results_of(lock.parent)
    assert row["images"] == 2 and [p.name for p in logs.iterdir()] == [lock.parent.name]


def test_leftovers_temp_files_modes_and_folders_of_failed_runs(env: dict, baseline: dict,
                                                               tmp_path: Path) -> None:
    # outputs written atomically (through mkstemp) get the same mode as the others
    run_dir = baseline["run_dir"]
    expected = (run_dir / "eval.log").stat().st_mode & 0o777
    for name in ("run.json", "summary.json", "summary.csv", "results.txt"):
        assert (run_dir / name).stat().st_mode & 0o777 == expected, name

    # a killed atomic write leaves a temp file: a resumed run cleans it up
    logs = tmp_path / "logs"
    shutil.copytree(run_dir, logs / run_dir.name)
    stale = [logs / run_dir.name / "summary.json.k9x2.tmp",
             logs / run_dir.name / "ious" / "tiny_GrabCut.npz.tmp.npz"]
    for p in stale:
        p.write_bytes(b"half")
    code, _, err = run_main(base_args(env, logs) + ["--resume"])
    assert code == 0, err
    assert not any(p.exists() for p in stale)

    # a new run that fails before its first sample leaves no folder behind
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"")
    argv = base_args(env, tmp_path / "new" / "logs")
    argv[argv.index(env["ckpt"])] = broken
    code, _, err = run_main(argv)
    assert code == 2 and "broken.pth" in err
    assert not (tmp_path / "new").exists()


def test_default_inference_size_is_the_models_training_size(env: dict, baseline: dict,
                                                            tmp_path: Path) -> None:
    # the tiny model was trained at 224; the baseline ran with an explicit --inference_size 224
    argv = base_args(env, tmp_path / "logs")
    i = argv.index("--inference_size")
    del argv[i:i + 2]
    assert ev.parse_args([str(a) for a in argv]).inference_size is None
    code, _, err = run_main(argv)
    assert code == 0, err
    run_dir = only_run_dir(tmp_path / "logs")
    (row,) = results_of(run_dir)
    (ref,) = results_of(baseline["run_dir"])
    assert (row["inference_size"], row["inference_size_from"]) == (224, "checkpoint")
    assert (ref["inference_size"], ref["inference_size_from"]) == (224, "--inference_size")
    drop = TIMING_KEYS | {"inference_size_from"}
    assert {k: v for k, v in row.items() if k not in drop} == \
        {k: v for k, v in ref.items() if k not in drop}
    assert run_dir.name == baseline["run_dir"].name  # the same results, the same run folder
    assert "inference_size" in (run_dir / "summary.csv").read_text().splitlines()[0]

    # an explicit flag overrides it and is recorded
    argv = base_args(env, tmp_path / "logs2", limit=1, n_clicks=1)
    argv[argv.index("--inference_size") + 1] = 160
    code, _, err = run_main(argv)
    assert code == 0, err
    (row,) = results_of(only_run_dir(tmp_path / "logs2"))
    assert (row["inference_size"], row["inference_size_from"]) == (160, "--inference_size")


def test_cascade_flags_warn_that_the_original_ignored_them(caplog) -> None:
    for argv, warned in ((SEED_CMD, True), (["--cf-n", "0"], False), (["--acf"], True)):
        caplog.clear()
        ev.parse_args(argv)
        lines = [r.getMessage() for r in caplog.records if "original release" in r.getMessage()]
        assert len(lines) == (1 if warned else 0), (argv, lines)
    assert "ignored" in lines[0] and "Reproducing published numbers" in lines[0]


# ------------------------------------------------------------------------------- refinement
def test_refine_adds_a_row_with_its_own_name_and_key(env: dict, baseline: dict) -> None:
    """--refine grabcut: the plain row is the baseline's, then '<model>+grabcut' (graph-cut
    refinement), with its own per-sample log; the run folder is not the baseline's."""
    logs = env["root"] / "refined"
    code, out, err = run_main(base_args(env, logs) + ["--refine", "grabcut"])
    assert code == 0, err
    run_dir = only_run_dir(logs)
    assert run_dir.name != baseline["run_dir"].name
    plain, refined = results_of(run_dir)
    (base_row,) = results_of(baseline["run_dir"])
    assert without_timing(plain) == without_timing(base_row)
    assert plain["refine"] == "none" and refined["refine"] == "grabcut"
    assert refined["model"] == "tiny+grabcut" and "| tiny+grabcut" in out
    assert (run_dir / "ious" / "tiny+grabcut_GrabCut.jsonl").is_file()
    ious = load_ious_npz(run_dir / "ious" / "tiny+grabcut_GrabCut.npz")
    base = load_ious_npz(baseline["run_dir"] / "ious" / "tiny_GrabCut.npz")
    assert any(len(a) != len(b) or not np.array_equal(a, b) for a, b in zip(ious, base))


def test_refine_rejects_an_unknown_mode(env: dict) -> None:
    code, _, err = run_main(base_args(env, env["root"] / "bad") + ["--refine", "crf"])
    assert code == 2 and "--refine crf: unknown mode 'crf'" in err
