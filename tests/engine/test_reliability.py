"""Training under bad input and interruption (issue 12): broken resume checkpoints, bad
``--weights`` and config files give one line; Ctrl-C saves ``last.pth`` and prints the command
that resumes exactly; a live experiment folder is locked; stale temp files and the folders of
failed runs do not stay behind."""

from __future__ import annotations

import os
import pickle
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from isegm.engine.launch import resume_command
from isegm.model.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[2]
EXP = str(Path(__file__).with_name("tiny_experiment.py"))
pytestmark = pytest.mark.slow


def _run(args, env=None, timeout=900):
    """A training process (the timeout is only a safety net against a hung test)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _tiny(root: Path, *extra) -> list:
    return ["train.py", EXP, "--cpu", "--workers", "0", "--exps-path", root, *extra]


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


def _tiny_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_experiment_reliability", EXP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(exp_dir: Path) -> dict:
    return torch.load(exp_dir / "checkpoints" / "last.pth", weights_only=True)["model"]


class _RunsCode:
    """Unpickling this calls ``os.system``: a checkpoint crafted to run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_ctrl_c_saves_last_and_prints_the_command_that_resumes_exactly(tmp_path):
    straight = _run(_tiny(tmp_path / "a", "--exp-name", "s", "--save-last-every", "0"))
    assert straight.returncode == 0, straight.stderr[-2000:]
    # Ctrl-C at epoch 1 step 1; no periodic saves, so only the interrupt can write that point
    argv = _tiny(tmp_path / "b", "--exp-name", "c", "--save-last-every", "0")
    stopped = _run(argv, env={"ISEGM_INTERRUPT_AFTER_STEPS": "5"})
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    (exp_dir,) = (tmp_path / "b" / "tiny_test").iterdir()
    expected = resume_command([str(a) for a in argv[1:]], exp_dir, distributed=False)
    assert last == f"stopped at epoch 1 step 1; resume with: {expected}"
    assert expected.endswith(f"--resume-exp {exp_dir.name}") and "--exp-name" not in expected
    state = torch.load(exp_dir / "checkpoints" / "last.pth", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 1)
    assert not list((exp_dir / "checkpoints").glob("*.tmp"))
    (log,) = (exp_dir / "logs").glob("train_*.log")
    assert last in log.read_text()

    command = shlex.split(expected)
    assert command[:2] == ["python", "train.py"]
    resumed = _run(command[1:])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (straight_dir,) = (tmp_path / "a" / "tiny_test").iterdir()
    ref, got = _weights(straight_dir), _weights(exp_dir)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k


def test_resume_from_bad_last_pth_gives_one_line(tmp_path):
    exp_dir = tmp_path / "tiny_test" / "000_x"
    ckpt = exp_dir / "checkpoints" / "last.pth"
    ckpt.parent.mkdir(parents=True)
    init_model = _tiny_module().init_model
    save_checkpoint(tmp_path / "good.pth", init_model(None), optimizer={}, epoch=0)
    good = (tmp_path / "good.pth").read_bytes()
    marker = tmp_path / "code_ran"
    weights_only = tmp_path / "weights_only.pth"
    save_checkpoint(weights_only, init_model(None))
    cases = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "weights-only": weights_only.read_bytes(),
        "malicious pickle": pickle.dumps({"format": "isegm", "model": _RunsCode(marker),
                                          "optimizer": _RunsCode(marker)}),
    }
    torch.save({"format": "isegm", "model": _RunsCode(marker), "optimizer": {}, "epoch": 0},
               tmp_path / "evil.pth")
    cases["malicious torch file"] = (tmp_path / "evil.pth").read_bytes()
    for name, data in cases.items():
        ckpt.write_bytes(data)
        line = _one_error_line(_run(_tiny(tmp_path, "--resume-exp", "000")))
        assert str(ckpt) in line, (name, line)
        if name == "weights-only":
            assert "--weights" in line
    assert not marker.exists()  # no code from the file ran


def test_bad_weights_and_config_give_one_line_and_leave_no_folder(tmp_path):
    init_model = _tiny_module().init_model
    bad = tmp_path / "bad.pth"
    save_checkpoint(bad, init_model(None))
    state = torch.load(bad, weights_only=True)
    for model_entry in ([1, 2], torch.zeros(3), {"backbone.x": "not a tensor"}):
        torch.save({**state, "model": model_entry}, bad)
        line = _one_error_line(_run(_tiny(tmp_path / "exps", "--weights", bad)))
        assert str(bad) in line and "'model'" in line
        assert not (tmp_path / "exps" / "tiny_test").exists()  # the failed run left nothing

    not_utf8 = tmp_path / "latin1.yml"
    not_utf8.write_bytes("EXPS_PATH: ./caf\xe9\n".encode("latin-1"))
    as_list = tmp_path / "list.yml"
    as_list.write_text("EXPS_PATH: [a, b]\n")
    for config, words in ((not_utf8, "not UTF-8"), (as_list, "EXPS_PATH must be a path")):
        proc = _run(["train.py", EXP, "--cpu", "--workers", "0", "--config-path", config])
        line = _one_error_line(proc)
        assert str(config) in line and words in line


def test_live_experiment_is_locked_and_stale_temp_files_are_removed(tmp_path):
    killed = _run(_tiny(tmp_path, "--exp-name", "k"), env={"ISEGM_KILL_AFTER_STEPS": "3"})
    assert killed.returncode == -signal.SIGKILL
    (exp_dir,) = (tmp_path / "tiny_test").iterdir()
    stale = exp_dir / "checkpoints" / "last.pth.a1b2c3.tmp"  # a save killed half-way
    stale.write_bytes(b"half a checkpoint")

    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from isegm.utils.exp import FolderLock
            lock = FolderLock({str(exp_dir)!r}).acquire()
            print("locked", flush=True)
            sys.stdin.read()
        """)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = _one_error_line(_run(_tiny(tmp_path, "--resume-exp", "000")))
        assert str(exp_dir) in line and f"pid {holder.pid}" in line
        assert stale.exists()  # not touched while another process owns the folder
    finally:
        holder.kill()
        holder.wait()
    resumed = _run(_tiny(tmp_path, "--resume-exp", "000"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not stale.exists()


def test_time_limit_trains_in_chunks_that_resume_exactly(tmp_path):
    """``--time-limit 0`` stops after every step with exit 0 and the command that continues;
    following those commands until one finishes gives the weights of an uninterrupted run."""
    straight = _run(_tiny(tmp_path / "a", "--exp-name", "s"))
    assert straight.returncode == 0, straight.stderr[-2000:]
    command = ["python", *map(str, _tiny(tmp_path / "b", "--exp-name", "c", "--time-limit", "0"))]
    stops = []
    for _ in range(12):  # 8 steps: 8 stops and one last run that closes the final epoch
        proc = _run(command[1:])
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        if not last.startswith("time limit of 0 min reached at epoch "):
            break
        (exp_dir,) = (tmp_path / "b" / "tiny_test").iterdir()
        where, resume = last.split("; resume with: ")
        stops.append(tuple(int(w) for w in where.split()[-3::2]))
        if len(stops) == 1:  # the first stop names the original command line exactly
            assert resume == resume_command(command[2:], exp_dir, distributed=False)
        assert resume.endswith(f"--resume-exp {exp_dir.name}")
        command = shlex.split(resume)
        assert "--time-limit" in command
    assert stops == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3), (1, 4)]
    (straight_dir,) = (tmp_path / "a" / "tiny_test").iterdir()
    ref, got = _weights(straight_dir), _weights(exp_dir)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k


def test_bad_time_limit_is_refused_before_anything_runs(tmp_path):
    for bad in ("-1", "nan", "ten"):
        proc = _run(_tiny(tmp_path, "--time-limit", bad))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert "argument --time-limit" in proc.stderr.strip().splitlines()[-1]
        assert not (tmp_path / "tiny_test").exists()
