"""Every subcommand of `journeys` has a one-line description, and every option help and a
stated metavar; the walk covers subcommands added later without changes here."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from engine.app.cli import _parser
from engine.app.cli_parser import CommandParser, package_version
from engine.app.generator_cli import add_generator_options


def subcommands(parser: argparse.ArgumentParser, path: str = "journeys"
                ) -> Iterator[tuple[str, argparse.ArgumentParser, str | None]]:
    """(full name, parser, its line in the parent's help) of every subcommand, nested ones
    included."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        described = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            yield f"{path} {name}", sub, described.get(name)
            yield from subcommands(sub, f"{path} {name}")


def options_of(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            yield action


def test_every_subcommand_has_a_one_line_description() -> None:
    found = list(subcommands(_parser()))
    assert {"journeys run", "journeys generate", "journeys deliver"} <= {n for n, _, _ in found}
    missing = [name for name, _, line in found if not line or "\n" in line]
    assert not missing, f"subcommands without a one-line description: {missing}"


def test_every_option_of_every_subcommand_has_help() -> None:
    missing = [f"{name} {action.option_strings or action.dest}"
               for name, parser, _ in subcommands(_parser())
               for action in options_of(parser)
               if not action.help or action.help == argparse.SUPPRESS]
    assert not missing, f"options without help: {missing}"


def test_every_option_that_takes_a_value_names_it() -> None:
    """`--events FILE`, not argparse's `--events EVENTS`: a metavar says what kind of value."""
    unnamed = [f"{name} {action.option_strings or action.dest}"
               for name, parser, _ in subcommands(_parser())
               for action in options_of(parser)
               if action.nargs != 0 and action.metavar is None and action.choices is None]
    assert not unnamed, f"options without a metavar: {unnamed}"


def test_the_walk_catches_an_option_without_help() -> None:
    parser = CommandParser(prog="journeys")
    commands = parser.add_subparsers()
    later = commands.add_parser("later", help="a subcommand added later")
    later.add_argument("--quiet", action="store_true")
    assert [a.dest for _, p, _ in subcommands(parser) for a in options_of(p) if not a.help] \
        == ["quiet"]


def test_the_generator_options_have_help_and_metavars() -> None:
    parser = CommandParser(prog="python -m engine.app.generator")
    add_generator_options(parser)
    for action in options_of(parser):
        assert action.help, action.dest
        assert action.metavar is not None or action.choices is not None, action.dest


def test_a_usage_mistake_is_one_line_and_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        _parser().parse_args(["run", "--shards", "many"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("journeys run: argument --shards: invalid int value: 'many'")


def test_the_version_is_the_installed_packages() -> None:
    from importlib.metadata import version

    assert package_version() == version("journey-engine")


def test_the_version_from_a_checkout_never_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib
    from importlib.metadata import PackageNotFoundError

    import engine.app.cli_parser

    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(engine.app.cli_parser, "version", not_installed)
    pyproject = tomllib.loads(engine.app.cli_parser.PYPROJECT.read_text(encoding="utf-8"))
    assert package_version() == pyproject["project"]["version"]
