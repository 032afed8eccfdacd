"""Build step: compile the engine's hot-path modules with mypyc (see engine/compiled_core.py).

Everything else about the package is in pyproject.toml. Set JOURNEYS_PURE_PYTHON=1 to install
without compiling; a machine without a C compiler gets the pure-Python package, with a warning.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _compiled_core() -> Any:
    """engine/compiled_core.py alone, without importing the package it describes."""
    path = Path(__file__).resolve().parent / "engine" / "compiled_core.py"
    spec = importlib.util.spec_from_file_location("_compiled_core", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


_CORE = _compiled_core()
COMPILED_MODULES: tuple[str, ...] = _CORE.COMPILED_MODULES
PURE_PYTHON_VARIABLE: str = _CORE.PURE_PYTHON_VARIABLE

BUILD_TYPE_CHECK = ["--ignore-missing-imports", "--no-warn-unused-ignores"]
"""pip builds in an environment with only the build requirements (pyproject.toml): mypyc
reads the other dependencies as untyped (they are called as any Python code is), and
`type: ignore` comments that only they need are not errors there. `mypy` stays strict."""


class OptionalBuildExt(build_ext):
    """Build the compiled core if this machine can; otherwise install the Python source."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the source still works
            self.warn(f"the compiled core was not built ({exc}); the engine runs its Python "
                      f"source, slower")
            return
        # a rebuild may leave a module's own extension as it was (its code lives in the
        # shared library beside it): date them all now, for engine/compiled_core.py
        for ext in self.extensions:
            built = Path(self.get_ext_fullpath(ext.name))
            if built.exists():
                os.utime(built)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.warn(f"the compiled core was not built ({exc}); the engine runs its Python "
                      f"source, slower")


def extensions() -> list[Any]:
    if os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    paths = [module.replace(".", "/") + ".py" for module in COMPILED_MODULES]
    try:
        return list(mypycify([*BUILD_TYPE_CHECK, *paths], opt_level="3"))
    except (Exception, SystemExit) as exc:  # mypyc refused the source: install it as it is
        print(f"warning: the compiled core was not built ({exc}); the engine runs its "
              f"Python source, slower", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
