"""The annotation package (issue 24): what it may import, and the old import paths that keep
working for one release as thin re-exports of the names it now holds."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import isegm.annotation

PACKAGE = Path(isegm.annotation.__file__).parent

#: (old module, names a user may have imported from it)
OLD_PATHS = (
    ("isegm.predict", ["Predictor", "InputError", "DeviceError", "ClickTuple", "check_clicks",
                       "parse_clicks", "read_image", "read_mask", "write_png", "load_model",
                       "select_device", "set_threads", "resolve_refine", "resolve_checkpoint",
                       "default_checkpoint_help", "DEFAULT_CHECKPOINT", "DEFAULT_MAX_CLICKS"]),
    ("isegm.demo.controller", ["InteractiveController", "ControllerView", "label_map_dtype"]),
    ("isegm.demo", ["InteractiveController", "ControllerView", "label_map_dtype"]),
)


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` of ``path`` names (any depth)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_gui_web_or_command_line_imports() -> None:
    """The core is the same for the CLI, the window and the server: no Tk, FastAPI, Starlette,
    pydantic or argparse in it (each of them belongs to one front end)."""
    banned = ("tkinter", "fastapi", "starlette", "pydantic", "uvicorn", "argparse")
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        bad = [m for m in _imported_modules(path) if m.split(".")[0] in banned]
        assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("module,names", OLD_PATHS)
def test_old_import_paths_give_the_moved_objects(module: str, names: list[str]) -> None:
    old = importlib.import_module(module)
    for name in names:
        home = isegm.annotation.home_of(name)
        assert home is not None, name
        assert getattr(old, name) is getattr(importlib.import_module(home), name), name


def test_every_listed_name_is_defined_where_the_package_says() -> None:
    for name in isegm.annotation.__all__:
        module = importlib.import_module(isegm.annotation.home_of(name))
        assert getattr(module, name) is getattr(isegm.annotation, name)
    with pytest.raises(AttributeError):
        isegm.annotation.NoSuchName  # noqa: B018


def test_old_server_import_path() -> None:
    from isegm.serve import ServeConfig, create_app
    from isegm.serve.app import ApiError, Service
    from isegm.serve.config import ServeConfig as config_home
    from isegm.serve.errors import ApiError as error_home
    from isegm.serve.service import Service as service_home

    assert (ServeConfig, ApiError, Service) == (config_home, error_home, service_home)
    assert create_app.__module__ == "isegm.serve.app"


def test_torch_free_limits_equal_the_image_readers() -> None:
    """One image limit (isegm/data/limits.py) for the tools, the readers and the server."""
    from isegm.annotation.defaults import DEFAULT_MAX_PIXELS
    from isegm.data.io import DEFAULT_MAX_PIXELS as readers_default
    from isegm.serve.config import ServeConfig

    assert DEFAULT_MAX_PIXELS == readers_default == ServeConfig().max_pixels
