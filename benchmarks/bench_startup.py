#!/usr/bin/env python
"""How long each command takes to answer ``--help`` and a bad argument (issue 26 item 4).

Every entry point parses and checks its command line before it imports torch and the model
code, so both answers should take about an interpreter start, not the 8-20 s of imports a run
pays. Each command runs ``--repeat`` times in a fresh interpreter (this tree's ``isegm`` first
on PYTHONPATH); the table gives the median wall time, the exit code and whether torch was
imported (``-X importtime`` on the last run).

    python benchmarks/bench_startup.py [--repeat 3] [--baseline-ref HEAD~3] [--match isegm]

``--baseline-ref REF`` also times the same commands in a ``git worktree`` of REF (e.g. the
commit before the change), for a before/after comparison on the same machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (label, argv after the interpreter) for each entry point: --help, then a bad argument
COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("evaluate_model.py --help", ["evaluate_model.py", "--help"]),
    ("evaluate_model.py --target-iou abc", ["evaluate_model.py", "--target-iou", "abc"]),
    ("evaluate_model.py --datasets FooBar", ["evaluate_model.py", "--datasets", "FooBar"]),
    ("train.py --help", ["train.py", "--help"]),
    ("train.py models/missing.py", ["train.py", "models/missing.py"]),
    ("dis_train.py --help", ["dis_train.py", "--help"]),
    ("dis_train.py --time-limit x", ["dis_train.py", "models/mst_tiny_synthetic.py",
                                     "--time-limit", "x"]),
    ("demo.py --help", ["demo.py", "--help"]),
    ("demo.py --threshold abc", ["demo.py", "--threshold", "abc"]),
    ("-m isegm.predict --help", ["-m", "isegm.predict", "--help"]),
    ("-m isegm.predict --threshold abc", ["-m", "isegm.predict", "--image", "a.png", "--clicks",
                                          "1,1,+", "--output", "o.png", "--threshold", "abc"]),
    ("-m isegm.predict --threshold 2", ["-m", "isegm.predict", "--image", "a.png", "--clicks",
                                        "1,1,+", "--output", "o.png", "--threshold", "2"]),
    ("-m isegm.serve --help", ["-m", "isegm.serve", "--help"]),
    ("-m isegm.serve --port abc", ["-m", "isegm.serve", "--port", "abc"]),
    ("-m isegm.serve --port 0", ["-m", "isegm.serve", "--port", "0"]),
)


def time_command(root: Path, argv: list[str], repeat: int) -> tuple[float, int, bool]:
    """(median seconds, exit code, torch imported) of ``python argv`` run in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    times, code = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        code = subprocess.run([sys.executable, *argv], cwd=root, env=env,
                              capture_output=True, timeout=600).returncode
        times.append(time.perf_counter() - start)
    trace = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=root, env=env,
                           capture_output=True, text=True, timeout=600).stderr
    torch_loaded = any(line.rpartition("|")[2].strip() == "torch" for line in trace.splitlines())
    return statistics.median(times), code, torch_loaded


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    p.add_argument("--baseline-ref", default=None,
                   help="also time a git worktree of this revision (before the change)")
    p.add_argument("--match", default="",
                   help="time only the commands whose label contains this text (e.g. isegm)")
    args = p.parse_args()
    commands = [(label, argv) for label, argv in COMMANDS if args.match in label]
    if not commands:
        p.error(f"--match {args.match!r}: no command label contains it")
    roots = [("this tree", REPO)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_ref:
            base = Path(tmp) / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline_ref],
                           cwd=REPO, check=True, capture_output=True)
            for rel in ("weights",):  # untracked weights the entry points may look for
                if (REPO / rel).is_dir() and not (base / rel).exists():
                    (base / rel).symlink_to(REPO / rel)
            roots.append((args.baseline_ref, base))
        try:
            print(f"| command | {' | '.join(f'{name}: s (exit, torch)' for name, _ in roots)} |")
            print("|---|" + "---|" * len(roots))
            for label, argv in commands:
                cells = []
                for _, root in roots:
                    seconds, code, torch_loaded = time_command(root, argv, args.repeat)
                    cells.append(f"{seconds:.2f} ({code}, {'torch' if torch_loaded else '-'})")
                print(f"| `{label}` | {' | '.join(cells)} |", flush=True)
        finally:
            if args.baseline_ref:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO,
                               capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
