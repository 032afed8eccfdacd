"""The compiled core: the hot-path modules, built to C extensions by mypyc at install time.

`pip install .` (or `-e .`) compiles the modules in `COMPILED_MODULES` from their typed Python
source (see setup.py); the sources stay the reference and behave the same, only faster. This
module's `install`, called by `engine/__init__.py` before any of them loads, decides which
form loads:

- the compiled form, when it was built and every compiled module is newer than its source;
- the Python source of all of them, when `JOURNEYS_PURE_PYTHON=1` is set (for profiling and
  debugging), or when, in a source checkout, any source changed after the last build: the
  group is switched as one, since compiled modules call each other directly.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

COMPILED_MODULES: tuple[str, ...] = (
    "engine.core.aggregates",
    "engine.core.catalog",
    "engine.core.commands",
    "engine.core.decoding",
    "engine.core.events",
    "engine.core.policy_gate",
    "engine.core.profile",
    "engine.core.runtime",
    "engine.core.scope",
    "engine.core.state",
    "engine.core.state_codec",
    "engine.core.timeline",
    "engine.core.timeutil",
    "engine.flow.processor",
    "engine.flow.routing",
    "journeys_dsl.expressions",
)
"""Modules setup.py compiles, by import name."""

PURE_PYTHON_VARIABLE = "JOURNEYS_PURE_PYTHON"
_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CoreForm:
    """Which form of the core modules this process loads, and why."""

    compiled: bool
    reason: str
    built: int = 0
    """How many of the modules have a built extension."""
    stale: bool = False
    """A source changed after the build."""

    def describe(self) -> str:
        return f"compiled core: {'yes' if self.compiled else 'no'} ({self.reason})"


def source_of(module: str, root: Path = _ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def extension_of(module: str, root: Path = _ROOT) -> Path | None:
    """The built extension of `module` beside its source, if there is one."""
    source = source_of(module, root)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.exists():
            return candidate
    return None


def choose_form(modules: Sequence[str] = COMPILED_MODULES, root: Path = _ROOT,
                environ: dict[str, str] | os._Environ[str] = os.environ) -> CoreForm:
    """Whether the compiled modules may load (see the module's docstring)."""
    extensions = {module: extension_of(module, root) for module in modules}
    built = sum(extension is not None for extension in extensions.values())
    if environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"):
        return CoreForm(False, f"{PURE_PYTHON_VARIABLE} is set", built)
    checkout = (root / "pyproject.toml").exists()  # an installed package is not edited
    for module, extension in extensions.items():
        source = source_of(module, root)
        if (checkout and extension is not None and source.exists()
                and source.stat().st_mtime > extension.stat().st_mtime):
            relative = source.relative_to(root)
            return CoreForm(False, f"{relative} changed after it was compiled; "
                                   f"`pip install -e .` compiles it again", built, stale=True)
    if built < len(modules):
        return CoreForm(False, "not built; `pip install .` compiles it", built)
    return CoreForm(True, f"{built} modules", built)


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their Python source, ahead of any built extension."""

    def __init__(self, modules: Sequence[str], root: Path) -> None:
        self._sources = {module: source_of(module, root) for module in modules}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        source = self._sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, source, loader=importlib.machinery.SourceFileLoader(fullname, str(source)))


def install() -> CoreForm:
    """Choose the form (`choose_form`) and make the imports that follow load it; once, by
    `engine/__init__.py`, before any core module."""
    global CORE_FORM
    form = CORE_FORM = choose_form()
    if not form.compiled and form.built:
        sys.meta_path.insert(0, _SourceFinder(COMPILED_MODULES, _ROOT))
        if form.stale:
            warnings.warn(f"running the Python source of the core: {form.reason}",
                          RuntimeWarning, stacklevel=2)
    return form


CORE_FORM = CoreForm(False, "not chosen: engine/__init__.py calls install()")
"""The form this process loaded."""
