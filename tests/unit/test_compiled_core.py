"""Which form of the core loads: the compiled modules, or their Python source as one group."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.compiled_core import COMPILED_MODULES, CORE_FORM, PURE_PYTHON_VARIABLE, choose_form

MODULES = ("pkg.alpha", "pkg.beta")
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
ROOT = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path, built: tuple[str, ...] = MODULES) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    for module in MODULES:
        (tmp_path / (module.replace(".", "/") + ".py")).write_text("")
    for module in built:
        extension = tmp_path / (module.replace(".", "/") + SUFFIX)
        extension.write_bytes(b"")
        os.utime(extension, (extension.stat().st_atime, extension.stat().st_mtime + 10))
    return tmp_path


def test_a_fresh_build_loads_compiled(tmp_path: Path) -> None:
    form = choose_form(MODULES, _tree(tmp_path), {})
    assert form.compiled and not form.stale and form.describe() == "compiled core: yes (2 modules)"


def test_a_source_edited_after_the_build_switches_the_whole_group_to_source(
        tmp_path: Path) -> None:
    root = _tree(tmp_path)
    source = root / "pkg" / "beta.py"
    os.utime(source, (source.stat().st_atime, source.stat().st_mtime + 60))
    form = choose_form(MODULES, root, {})
    assert not form.compiled and form.stale
    assert "pkg/beta.py changed after it was compiled" in form.reason
    assert "pip install -e ." in form.reason


def test_an_installed_package_trusts_its_build(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "pyproject.toml").unlink()
    source = root / "pkg" / "beta.py"
    os.utime(source, (source.stat().st_atime, source.stat().st_mtime + 60))
    assert choose_form(MODULES, root, {}).compiled


def test_the_variable_asks_for_the_source(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert not choose_form(MODULES, root, {PURE_PYTHON_VARIABLE: "1"}).compiled
    assert choose_form(MODULES, root, {PURE_PYTHON_VARIABLE: "0"}).compiled


def test_a_partial_build_is_not_used(tmp_path: Path) -> None:
    form = choose_form(MODULES, _tree(tmp_path, built=MODULES[:1]), {})
    assert not form.compiled and not form.stale and "not built" in form.reason


def test_the_installed_package_runs_the_compiled_core() -> None:
    """`pip install` compiles the core; a silent fall back to the source would cost the
    engine its speed."""
    if os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        pytest.skip(f"{PURE_PYTHON_VARIABLE} asks for the Python source")
    assert CORE_FORM.compiled, CORE_FORM.reason
    for name in COMPILED_MODULES:
        assert not str(importlib.import_module(name).__file__).endswith(".py"), name


def test_the_variable_loads_every_compiled_module_from_source() -> None:
    code = ("import importlib, engine\n"
            f"names = {list(COMPILED_MODULES)!r}\n"
            "print(all(importlib.import_module(n).__file__.endswith('.py') for n in names))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, PURE_PYTHON_VARIABLE: "1"}, check=True)
    assert done.stdout.strip() == "True"
