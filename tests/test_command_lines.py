"""A new user's first commands (issue 26): every entry point checks its command line before it
imports torch, a bad argument is one ``error:`` line with a pointer to ``--help`` (exit 2), an
unknown dataset name is a bad argument, and a missing dataset folder names where its path came
from and the fix for that source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from isegm.data.base import DatasetError
from isegm.data.datasets import get_eval_dataset

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

#: the entry points that parse before any heavy import: (script, a bad type argument)
LIGHT = (
    ("evaluate_model.py", ["--target-iou", "abc"]),
    ("train.py", ["models/mst_tiny_synthetic.py", "--time-limit", "abc"]),
    ("dis_train.py", ["models/mst_tiny_synthetic.py", "--workers", "abc"]),
    ("demo.py", ["--threshold", "abc"]),
)

# runs a script as ``python SCRIPT ARGS`` would, then reports its exit code and whether torch
# (or the model code) was imported by then
_PROBE = """
import runpy, sys
script, *args = sys.argv[1:]
sys.argv = [script, *args]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in ("torch", "isegm.model.build", "isegm.inference.predictor")
               if m in sys.modules)
sys.__stdout__.write(f"\\nPROBE {code} {','.join(heavy) or '-'}\\n")
"""


# the same for ``python -m MODULE ARGS``; FastAPI counts as heavy too (the server's app)
_PROBE_MODULE = _PROBE.replace("runpy.run_path(script, run_name=\"__main__\")",
                               "runpy.run_module(script, run_name=\"__main__\", alter_sys=True)"
                               ).replace('("torch", ', '("torch", "fastapi", ')
assert "run_module" in _PROBE_MODULE and "fastapi" in _PROBE_MODULE


def _probe(script: str, args: list[str], probe: str = _PROBE) -> tuple[int, str, str]:
    """(exit code, heavy modules imported, stderr) of ``python script args``."""
    res = subprocess.run([sys.executable, "-c", probe, script, *args], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=600)
    last = [line for line in res.stdout.splitlines() if line.startswith("PROBE ")][-1]
    _, code, heavy = last.split()
    return int(code), heavy, res.stderr


@pytest.mark.parametrize("script,bad", LIGHT)
def test_help_and_bad_arguments_come_before_torch(script: str, bad: list[str]) -> None:
    code, heavy, _ = _probe(script, ["--help"])
    assert (code, heavy) == (0, "-")
    code, heavy, err = _probe(script, bad)
    assert (code, heavy) == (2, "-"), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert bad[-2] in lines[0] and "'abc'" in lines[0] and f"{script} --help" in lines[0]


#: ``python -m`` entry points: (module, a bad type argument, a bad value argument)
LIGHT_MODULES = (
    ("isegm.predict", ["--image", "a.png", "--clicks", "1,1,+", "--output", "o.png",
                       "--threshold", "abc"],
     ["--image", "a.png", "--clicks", "1,1,+", "--output", "o.png", "--threshold", "2"]),
    ("isegm.serve", ["--port", "abc"], ["--port", "0"]),
)


@pytest.mark.parametrize("module,bad_type,bad_value", LIGHT_MODULES)
def test_module_commands_answer_before_torch(module: str, bad_type: list[str],
                                              bad_value: list[str]) -> None:
    """Issue 26 item 4: ``--help`` and a bad flag of ``python -m isegm.predict`` /
    ``python -m isegm.serve`` import neither torch nor the model code nor FastAPI."""
    code, heavy, _ = _probe(module, ["--help"], _PROBE_MODULE)
    assert (code, heavy) == (0, "-")
    code, heavy, err = _probe(module, bad_type, _PROBE_MODULE)
    assert (code, heavy) == (2, "-"), err
    assert f"python -m {module} --help" in err and "'abc'" in err
    code, heavy, err = _probe(module, bad_value, _PROBE_MODULE)
    assert (code, heavy) == (2, "-"), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad_value[-2]} must be"), err


@pytest.mark.parametrize("module,argv", [
    ("isegm.predict", ["--cpu", "--image", "a.png", "--clicks", "1,1,+", "--output", "o.png",
                       "--precision", "fp16"]),
    ("isegm.serve", ["--cpu", "--precision", "fp16"]),
    ("isegm.serve", ["--cpu", "--precision", "fp16", "--backend", "onnxruntime"]),
])
def test_precision_the_cpu_lacks_is_refused_before_torch(module: str, argv: list[str]) -> None:
    """Issue 25: a precision or backend the CPU does not offer is one line, before torch."""
    code, heavy, err = _probe(module, argv, _PROBE_MODULE)
    assert (code, heavy) == (2, "-"), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "fp16" in lines[0], err


@pytest.mark.parametrize("argv", [
    ["-m", "isegm.predict", "--image", "a.png", "--clicks", "1,1,+", "--output", "o.png",
     "--threshold", "abc"],
    ["-m", "isegm.serve", "--port", "abc"],
    ["-m", "isegm.model.weights", "verify", "mae-base", "f", "--bogus"],
])
def test_argparse_errors_are_one_line_with_a_pointer_to_help(argv: list[str]) -> None:
    res = subprocess.run([sys.executable, *argv], cwd=REPO, env=ENV, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr  # no usage block above the error
    assert lines[0].startswith("error: ") and "--help)" in lines[0]
    assert "usage:" not in res.stderr


def test_train_refuses_a_missing_experiment_script_before_torch() -> None:
    code, heavy, err = _probe("train.py", ["models/no_such_experiment.py", "--cpu"])
    assert (code, heavy) == (2, "-")
    assert err.strip() == ("error: experiment script not found: models/no_such_experiment.py "
                           "(see: train.py --help)")


def test_unknown_dataset_is_a_bad_argument(tmp_path: Path) -> None:
    """A typo beside a valid dataset stops the run before any work (exit 2, the known names),
    as a misspelt checkpoint does; nothing is written."""
    logs = tmp_path / "logs"
    for names in ("FooBar", "GrabCut,FooBar,SyntheticSMALL"):
        code, heavy, err = _probe("evaluate_model.py", ["--datasets", names, "--cpu",
                                                        "--logs-path", str(logs)])
        assert (code, heavy) == (2, "-"), err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --datasets: unknown dataset "
                                                        "'FooBar'; known: GrabCut, "), err
        assert "SyntheticSMALL" in lines[0] and "ImagesDir:<folder>" in lines[0]
    assert not logs.exists()


def test_missing_dataset_folder_names_its_source_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "GrabCut"
    with pytest.raises(DatasetError) as e:
        get_eval_dataset("GrabCut", {"GRABCUT_PATH": str(missing)})
    msg = str(e.value)
    assert f"GRABCUT_PATH = {missing} (config.yml)" in msg and "does not exist" in msg
    assert "download_datasets.sh" in msg and "fix GRABCUT_PATH in config.yml" in msg
    assert "--dataset-path GrabCut=PATH" in msg  # the other way to give it

    with pytest.raises(DatasetError) as e:
        get_eval_dataset("GrabCut", {"GRABCUT_PATH": "elsewhere"}, path_override=str(missing))
    msg = str(e.value)
    assert f"--dataset-path GrabCut={missing}" in msg and "does not exist" in msg
    assert "config.yml" not in msg and "download" not in msg

    with pytest.raises(DatasetError, match="config key GRABCUT_PATH is not set in config.yml "
                                           r"\(set it, or give --dataset-path GrabCut=PATH\)"):
        get_eval_dataset("GrabCut", {})


def test_missing_dataset_in_a_run_names_the_flag(tmp_path: Path) -> None:
    """End to end: the skipped-dataset line of evaluate_model.py names --dataset-path."""
    res = subprocess.run([sys.executable, "evaluate_model.py", "--cpu", "--datasets", "GrabCut",
                          "--dataset-path", f"GrabCut={tmp_path / 'nowhere'}", "--logs-path",
                          str(tmp_path / "logs")], cwd=REPO, env=ENV, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 1  # nothing evaluated
    skip = [line for line in res.stderr.splitlines() if "skipping dataset GrabCut" in line]
    assert len(skip) == 1 and f"--dataset-path GrabCut={tmp_path / 'nowhere'}" in skip[0]
    assert "config.yml" not in skip[0]


def test_registry_names_a_reader_for_every_dataset() -> None:
    """The torch-free registry names its readers as text: each must be a reader class."""
    import importlib

    from isegm.data.base import ISDataset
    from isegm.data.eval_registry import EVAL_DATASETS

    for name, (class_path, _, _) in EVAL_DATASETS.items():
        module, _, cls = class_path.rpartition(".")
        reader = getattr(importlib.import_module(f"isegm.data.datasets.{module}"), cls)
        assert issubclass(reader, ISDataset), name
