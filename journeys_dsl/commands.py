"""The `journeys validate` and `journeys schema` commands, as plain functions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from journeys_dsl.errors import sort_problems
from journeys_dsl.loader import check_journeys
from journeys_dsl.schema import journey_json_schema
from journeys_dsl.vocabulary import Vocabulary

__all__ = ["schema_command", "validate_command"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def validate_command(paths: list[str], out: TextIO, err: TextIO,
                     vocabulary: Vocabulary | None = None) -> int:
    """Validate journey files and directories (against `vocabulary`'s known values).

    Prints each problem as `FILE:LINE:COL: message (at PATH)` to `err`, or
    `ok: N journeys in M files` to `out`. Returns 0 when all is valid, 1 when there are
    problems, 2 when a path does not exist (or none was given).
    """
    if not paths:
        print("error: name at least one journey file or directory", file=err)
        return 2
    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        for path in missing:
            print(f"error: no such file or directory: {path}", file=err)
        return 2
    checked = check_journeys(paths, vocabulary)
    problems, files = checked.problems, checked.files
    for problem in sort_problems([*problems, *checked.warnings]):
        print(problem, file=err)
    warned = f" and {_plural(len(checked.warnings), 'warning')}" if checked.warnings else ""
    if problems:
        bad_files = len({problem.file for problem in problems})
        print(f"{_plural(len(problems), 'problem')}{warned} in {bad_files} of "
              f"{_plural(files, 'file')}", file=err)
        return 1
    warned = f" ({_plural(len(checked.warnings), 'warning')})" if checked.warnings else ""
    print(f"ok: {_plural(len(checked.plans), 'journey')} in {_plural(files, 'file')}{warned}",
          file=out)
    return 0


def schema_command(out: TextIO, event_types: Sequence[str] = (),
                   event_dates: Sequence[str] = ()) -> int:
    """Print the JSON Schema of journey files, for editors; `event_types` are declared
    types journeys may use beside the built-in ones, `event_dates` their date fields
    (`event.booked_for`)."""
    schema = journey_json_schema()
    if event_types:
        from journeys_dsl.event_types import schema_with_types

        schema = schema_with_types(schema, event_types, event_dates)
    print(json.dumps(schema, indent=2), file=out)
    return 0
