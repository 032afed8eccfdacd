"""The argument parser the commands share: a mistake is one line, and the product's version.

argparse prints the whole usage before a mistake; on a long command such as `journeys run`
that buries the one line that matters. `CommandParser` prints only that line, with the
command's name and where to read more, and exits with status 2.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from engine.compiled_core import CORE_FORM

DISTRIBUTION = "journey-engine"
"""The name the package is installed under (pyproject.toml's project.name)."""
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
USAGE_MISTAKE = 2


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2.

    Subcommand parsers made through `add_subparsers` are of the same class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_MISTAKE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def package_version() -> str:
    """The installed package's version; from a source checkout that was never installed,
    the version in its pyproject.toml; "unknown" when neither says."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
        return str(project["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def add_version_option(parser: argparse.ArgumentParser) -> None:
    """`--version`: print the command's name, the package's version and whether its core
    is compiled, then exit 0."""
    parser.add_argument("--version", action="version",
                        version=f"{parser.prog} {package_version()}; {CORE_FORM.describe()}",
                        help="print the version and exit")



def port_number(text: str) -> int:
    """A `--port` value: a whole number from 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a port number, not {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"give a port from 1 to 65535, not {text}")
    return port


class Unset:
    """The default of a flag left out, kept apart from a value given on the command line
    so that the run settings model can fill it from the environment or a file."""

    __slots__ = ("default",)

    def __init__(self, default: Any) -> None:
        self.default = default

    def __str__(self) -> str:
        return str(self.default)

    def __repr__(self) -> str:
        return repr(self.default)


def defer_defaults(parser: argparse.ArgumentParser, dests: Iterable[str]) -> None:
    """Mark the defaults of the options `dests` as `Unset` (see `given_options`)."""
    wanted = set(dests)
    for action in parser._actions:
        if action.dest in wanted and not isinstance(action.default, Unset):
            action.default = Unset(action.default)


def given_options(args: argparse.Namespace, dests: Iterable[str]) -> dict[str, Any]:
    """Those of the options `dests` given on the command line, by destination."""
    values = vars(args)
    return {dest: values[dest] for dest in dests
            if dest in values and not isinstance(values[dest], Unset)}
