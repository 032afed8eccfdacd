"""Compiling the engine's other YAML files (segments, policies) with journey-style errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from journeys_dsl.errors import JourneyValidationError, Problem, sort_problems
from journeys_dsl.node_reader import NodeReader
from journeys_dsl.yaml_nodes import Node, load_nodes

T = TypeVar("T")
P = TypeVar("P", bound=NodeReader)


def compile_file(text: str, filename: str, parser: P, build: Callable[[P, Node], T | None],
                 what: str) -> T:
    """Parse `text` with `build`; raise `JourneyValidationError` with every problem found."""
    root, problems = load_nodes(text, filename)
    result = build(parser, root) if root is not None else None
    problems = [*problems, *parser.problems]
    if problems or result is None:
        if not problems:
            problems.append(Problem(filename, 1, 1, f"the {what} file is empty"))
        raise JourneyValidationError(sort_problems(problems))
    return result
