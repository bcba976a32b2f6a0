"""Layers that only point down (issue 24; docs/architecture.md explains each rule).

The imports of every module under ``isegm/`` are read with :mod:`ast` — module level, inside
functions and under ``TYPE_CHECKING`` alike, relative imports resolved, and
``importlib.import_module("isegm...")`` calls with a constant name — and checked against the
rules below. Also: no file under ``isegm/`` over 450 lines, entry scripts under 150.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "isegm"

#: package -> what it must not import, and why (one line each; docs/architecture.md has more)
RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "isegm.utils": (("isegm",), "utilities stay below everything"),
    "isegm.model": (
        ("isegm.data", "isegm.engine", "isegm.inference", "isegm.annotation", "isegm.demo",
         "isegm.serve", "isegm.predict"),
        "the network knows no datasets, training, inference loops or front ends"),
    "isegm.data": (
        ("isegm.model", "isegm.engine", "isegm.inference", "isegm.annotation", "isegm.demo",
         "isegm.serve", "isegm.predict"),
        "datasets know no network"),
    "isegm.inference": (
        ("isegm.engine", "isegm.annotation", "isegm.demo", "isegm.serve", "isegm.predict"),
        "evaluation and prediction do not depend on training or on a front end"),
    "isegm.engine": (
        ("isegm.annotation", "isegm.demo", "isegm.serve", "isegm.predict"),
        "training uses the inference click rule, no front end"),
    "isegm.annotation": (
        ("isegm.engine", "isegm.demo", "isegm.serve", "isegm.predict"),
        "the annotation core stands below both front ends and the command line"),
    "isegm.demo": (("isegm.serve", "isegm.engine"), "the Tk demo and the server share only "
                   "the annotation core"),
    "isegm.serve": (("isegm.demo", "isegm.engine"), "the server is HTTP over the annotation "
                    "core, not over the Tk demo"),
}
#: third-party modules a package must not import (the annotation core runs under the Tk demo,
#: the server and the command line alike)
FOREIGN_RULES: dict[str, tuple[str, ...]] = {
    "isegm.annotation": ("tkinter", "fastapi", "starlette", "uvicorn", "argparse",
                         "isegm.utils.cli"),
}

MAX_LINES = 450
ENTRY_SCRIPTS = ("train.py", "dis_train.py", "evaluate_model.py", "demo.py")
MAX_ENTRY_LINES = 150


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted name of ``path`` under ``root`` (the folder holding ``isegm/``) and whether it
    is a package ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def imports_of(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import in ``path``; ``from a import b`` yields
    ``a`` and ``a.b`` (``b`` may be a submodule)."""
    name, is_pkg = module_name(path, root)
    package = name if is_pkg else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level - 1 > 0:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> list[tuple[str, str]]:
    """``(file relative to root, one-line description)`` for every broken rule under
    ``root/isegm``."""
    found = []
    for path in sorted((root / "isegm").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        name, _ = module_name(path, root)
        for package, (forbidden, why) in RULES.items():
            if not _within(name, package):
                continue
            seen = set()
            for line, target in imports_of(path, root):
                if _within(target, package) or target == "isegm":
                    continue  # the package itself; the root ``isegm/__init__.py`` is empty
                hit = next((f for f in forbidden if _within(target, f)), None)
                if hit is not None and (line, hit) not in seen:
                    seen.add((line, hit))
                    found.append((rel, f"{rel}:{line}: {name} imports {target} "
                                       f"(a module of {package} may not import {hit}: {why})"))
        for package, foreign in FOREIGN_RULES.items():
            if not _within(name, package):
                continue
            for line, target in imports_of(path, root):
                hit = next((f for f in foreign if _within(target, f)), None)
                if hit is not None:
                    found.append((rel, f"{rel}:{line}: {name} imports {target} "
                                       f"(the {package} package stays free of {hit})"))
    return found


def too_long(root: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((root / "isegm").rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            rel = path.relative_to(root).as_posix()
            out.append((rel, f"{rel}: {n} lines (at most {MAX_LINES})"))
    for script in ENTRY_SCRIPTS:
        path = root / script
        if path.is_file():
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n >= MAX_ENTRY_LINES:
                out.append((script, f"{script}: {n} lines (entry scripts stay under "
                                    f"{MAX_ENTRY_LINES})"))
    return out


def test_imports_point_down() -> None:
    broken = [msg for _, msg in violations(REPO)]
    assert not broken, "\n".join(broken)


def test_no_file_too_long() -> None:
    broken = [msg for _, msg in too_long(REPO)]
    assert not broken, "\n".join(broken)


def test_the_checker_finds_planted_violations(tmp_path: Path) -> None:
    """Relative imports, imports inside functions, ``from isegm import x`` and
    ``import_module`` strings are all seen; allowed imports are not reported."""
    files = {
        "isegm/__init__.py": "",
        "isegm/data/__init__.py": "",
        "isegm/data/datasets/__init__.py": "",
        "isegm/data/datasets/reader.py": (
            "from ...model.checkpoint import load_npy\n"
            "from ..io import read_image\n"
            "from isegm.utils.safe_pickle import load_data_pickle\n"),
        "isegm/utils/__init__.py": "",
        "isegm/utils/tool.py": (
            "def f():\n"
            "    from isegm import inference\n"
            "    import importlib\n"
            "    return importlib.import_module('isegm.model.checkpoint')\n"),
        "isegm/serve/__init__.py": "from . import app\n",
        "isegm/serve/app.py": "from isegm.demo.controller import label_map_dtype\n",
        "isegm/annotation/__init__.py": "import tkinter\nfrom isegm.inference import clicker\n",
        "isegm/model/__init__.py": "",
        "isegm/model/net.py": "from isegm.utils.safe_pickle import plain_data\n"
                              "from .layers import x\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "isegm/model/big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "train.py").write_text("pass\n" * MAX_ENTRY_LINES)
    found = violations(tmp_path)
    where = sorted((msg.split(": ", 1)[0], msg.split(" imports ")[1].split(" (")[0])
                   for _, msg in found)
    assert where == [
        ("isegm/annotation/__init__.py:1", "tkinter"),
        ("isegm/data/datasets/reader.py:1", "isegm.model.checkpoint"),
        ("isegm/serve/app.py:1", "isegm.demo.controller"),
        ("isegm/utils/tool.py:2", "isegm.inference"),
        ("isegm/utils/tool.py:4", "isegm.model.checkpoint"),
    ], found
    assert sorted(rel for rel, _ in too_long(tmp_path)) == ["isegm/model/big.py", "train.py"]
