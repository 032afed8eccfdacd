"""Checking journeys against their message templates, before anything is sent.

    problems = check_templates(["examples/journeys"], Path("examples/templates"), ("en", "de"))

For every `send` action: the template folder exists, each listed language has the parts
the channel needs, every part compiles, and every variable a part reads is one the
command will carry (a standard variable or one of the action's `vars`). Problems point
at the send action in the journey file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import meta

from connectors.delivery.templates import (
    OPTIONAL_PARTS,
    REQUIRED_PARTS,
    STANDARD_VARS,
    VOUCHER_VARS,
    TemplateError,
    TemplateStore,
    normalize_language,
)
from journeys_dsl.errors import JourneyValidationError, Problem, sort_problems
from journeys_dsl.loader import expand_paths, load_journey_file
from journeys_dsl.plan import IssueAction, JourneyPlan, SendAction
from journeys_dsl.yaml_nodes import MappingNode, Node, SequenceNode, load_nodes

__all__ = ["check_templates"]


@dataclass(frozen=True)
class _Part:
    """What one template file reads, or why it cannot be read."""

    variables: frozenset[str]
    error: str | None


@dataclass(frozen=True)
class _Send:
    """A send action with its place in the journey file."""

    action: SendAction
    path: str
    line: int
    col: int
    after_issue: bool


class _Checker:
    def __init__(self, root: Path, languages: Sequence[str]) -> None:
        self.store = TemplateStore(root)
        self.languages = [normalize_language(language) for language in languages]
        self.parts: dict[tuple[str, str, str], _Part | None] = {}

    def part(self, template: str, language: str, part: str) -> _Part | None:
        key = (template, language, part)
        if key not in self.parts:
            self.parts[key] = self._read(template, language, part)
        return self.parts[key]

    def _read(self, template: str, language: str, part: str) -> _Part | None:
        try:
            if self.store.load(template, language, part) is None:
                return None
            source = self.store.source(template, language, part) or ""
        except TemplateError as exc:
            return _Part(frozenset(), exc.message)
        except (OSError, UnicodeDecodeError) as exc:
            return _Part(frozenset(), f"template '{template}' ({language}.{part}): cannot "
                                      f"read the file: {exc}")
        parsed = self.store.environment.parse(source)
        return _Part(frozenset(meta.find_undeclared_variables(parsed)), None)

    def check(self, send: _Send, filename: str) -> list[Problem]:
        action = send.action
        template = action.template

        def problem(message: str) -> Problem:
            return Problem(filename, send.line, send.col, message, send.path)

        if not self.store.has_folder(template):
            return [problem(f"template '{template}' not found: there is no folder "
                            f"'{template}' in {self.store.root}")]
        provided = {*STANDARD_VARS, *(name for name, _ in action.variables)}
        if send.after_issue:
            provided.update(VOUCHER_VARS)
        required = REQUIRED_PARTS.get(action.channel, ())
        optional = OPTIONAL_PARTS.get(action.channel, ())
        problems: list[Problem] = []
        for language in self.languages:
            for part in (*required, *optional):
                read = self.part(template, language, part)
                if read is None:
                    if part in required:
                        problems.append(problem(
                            f"template '{template}' has no {language}.{part}, which "
                            f"{action.channel} messages need; create "
                            f"{self.store.path(template, language, part)}"))
                    continue
                if read.error is not None:
                    problems.append(problem(read.error))
                    continue
                for name in sorted(read.variables - provided):
                    problems.append(problem(_unprovided(template, f"{language}.{part}", name)))
        return problems


def _unprovided(template: str, part: str, name: str) -> str:
    head = f"template '{template}' ({part}) uses '{name}'"
    if name in VOUCHER_VARS:
        return (f"{head}, which is only set once the journey has issued a voucher; add an "
                "'- issue:' action before this send action")
    return f"{head}, which this send action does not provide; add it under vars:"


def _child(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    entry = node.get(key)
    return entry.value if entry is not None else None


def _item(node: Node | None, index: int) -> Node | None:
    if not isinstance(node, SequenceNode) or not 0 <= index < len(node.items):
        return None
    return node.items[index]


def _sends(plan: JourneyPlan, root: Node | None) -> list[_Send]:
    """Every send action of `plan`, located in the file's nodes (1:1 when not found)."""
    sends: list[_Send] = []
    issued = False
    steps = _child(root, "steps")
    for i, step in enumerate(plan.steps):
        actions = _child(_item(steps, i), "actions")
        for j, action in enumerate(step.actions):
            if isinstance(action, IssueAction):
                issued = True
            if not isinstance(action, SendAction):
                continue
            node = _item(actions, j)
            line, col = (node.line, node.col) if node is not None else (1, 1)
            sends.append(_Send(action, f"steps[{i}].actions[{j}]", line, col, issued))
    return sends


def check_templates(journey_paths: Iterable[str | Path], templates_root: Path,
                    languages: Sequence[str] = ("en",)) -> list[Problem]:
    """Problems between the journeys in `journey_paths` and the templates they send.

    A journey file that does not validate contributes its own problems instead.
    `languages` are the languages every template must be written in. Raises
    `FileNotFoundError` for a journey path that does not exist and `ValueError` for a
    language that is not a language tag.
    """
    checker = _Checker(Path(templates_root), languages)
    problems: list[Problem] = []
    for path in expand_paths(journey_paths):
        filename = str(path)
        try:
            plan = load_journey_file(path)
        except JourneyValidationError as exc:
            problems.extend(exc.problems)
            continue
        root, _ = load_nodes(path.read_text(encoding="utf-8"), filename)
        for send in _sends(plan, root):
            problems.extend(checker.check(send, filename))
    return sort_problems(problems)
