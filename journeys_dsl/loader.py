"""Loading journey files: the public entry points of the journey language.

    plans = load_journeys(["examples/journeys"])      # raises JourneyValidationError
    problems = validate_paths(["my_journey.yaml"])    # [] when everything is valid
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from journeys_dsl.compiler import check_steps, compile_journey
from journeys_dsl.errors import JourneyValidationError, Problem, sort_problems
from journeys_dsl.model import JourneySpec
from journeys_dsl.parser import parse_journey
from journeys_dsl.plan import JourneyPlan
from journeys_dsl.vocabulary import Vocabulary
from journeys_dsl.yaml_nodes import load_nodes

__all__ = [
    "JOURNEY_SUFFIXES",
    "Checked",
    "check_journeys",
    "check_paths",
    "expand_paths",
    "load_journey_file",
    "load_journey_text",
    "load_journeys",
    "validate_paths",
]

JOURNEY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _Result:
    filename: str
    spec: JourneySpec | None
    plan: JourneyPlan | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Checked:
    """What checking journey files found: the valid plans, the problems (errors), the
    warnings (likely mistakes that do not stop a journey) and the number of files."""

    plans: list[JourneyPlan]
    problems: list[Problem]
    warnings: list[Problem]
    files: int


def _check_text(text: str, filename: str, vocabulary: Vocabulary | None = None) -> _Result:
    root, problems = load_nodes(text, filename)
    spec, parse_problems, warnings = parse_journey(root, filename, vocabulary)
    problems = [*problems, *parse_problems]
    if spec is not None:
        problems.extend(check_steps(spec, filename))
    if problems or spec is None:
        return _Result(filename, spec, None, tuple(sort_problems(problems)))
    return _Result(filename, spec, compile_journey(spec, filename, text), (),
                   tuple(sort_problems(warnings)))


def _check_file(path: Path, vocabulary: Vocabulary | None = None) -> _Result:
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return _Result(filename, None, None, (Problem(
            filename, 1, 1, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "save it as UTF-8"),))
    except OSError as exc:
        return _Result(filename, None, None, (Problem(
            filename, 1, 1, f"cannot read the file: {exc.strerror or exc}"),))
    return _check_text(text, filename, vocabulary)


def load_journey_text(text: str, filename: str, vocabulary: Vocabulary | None = None
                      ) -> JourneyPlan:
    """Compile one journey from its YAML text; raises `JourneyValidationError`.

    With a `vocabulary` (see `journeys_dsl.vocabulary`), literal text compared with a field
    of known values (segments, dayparts, statuses...) must be one of them."""
    result = _check_text(text, filename, vocabulary)
    if result.plan is None:
        raise JourneyValidationError(result.problems)
    return result.plan


def load_journey_file(path: str | Path, vocabulary: Vocabulary | None = None) -> JourneyPlan:
    """Compile one journey file; raises `JourneyValidationError` (or `OSError` if missing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such journey file: {path}")
    result = _check_file(path, vocabulary)
    if result.plan is None:
        raise JourneyValidationError(result.problems)
    return result.plan


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus each directory's *.yaml and *.yml files in name order.

    Raises `FileNotFoundError` for a path that does not exist.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir()
                                if p.suffix in JOURNEY_SUFFIXES and p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    unique: dict[Path, None] = {}
    for file in files:
        unique.setdefault(file, None)
    return list(unique)


def check_paths(paths: Iterable[str | Path], vocabulary: Vocabulary | None = None
                ) -> tuple[list[JourneyPlan], list[Problem], int]:
    """Plans of the valid files, every problem, and the number of files read."""
    checked = check_journeys(paths, vocabulary)
    return checked.plans, checked.problems, checked.files


def check_journeys(paths: Iterable[str | Path], vocabulary: Vocabulary | None = None
                   ) -> Checked:
    """Check every journey file of `paths`: plans, problems, warnings, files read."""
    files = expand_paths(paths)
    plans: list[JourneyPlan] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    defined: dict[tuple[str, int], str] = {}
    for file in files:
        result = _check_file(file, vocabulary)
        problems.extend(result.problems)
        warnings.extend(result.warnings)
        if result.plan is not None:
            plans.append(result.plan)
        spec = result.spec
        if spec is None or not spec.journey_id or spec.version < 1:
            continue
        key = (spec.journey_id, spec.version)
        if key in defined:
            problems.append(Problem(
                result.filename, spec.id_line, spec.id_col,
                f"journey '{spec.journey_id}' version {spec.version} is also defined in "
                f"{defined[key]}; each journey version must be defined once (bump 'version' "
                "or rename the journey)", "journey"))
        else:
            defined[key] = result.filename
    return Checked(plans, problems, warnings, len(files))


def load_journeys(paths: Iterable[str | Path], vocabulary: Vocabulary | None = None
                  ) -> list[JourneyPlan]:
    """Compile every journey in `paths` (files or directories of *.yaml / *.yml files).

    Problems of all files are collected and raised together as one
    `JourneyValidationError`, which also covers two files defining the same journey id
    and version. A path that does not exist raises `FileNotFoundError`. With a
    `vocabulary`, literal text compared with a field of known values must be one of them.
    """
    plans, problems, _ = check_paths(paths, vocabulary)
    if problems:
        raise JourneyValidationError(problems)
    return plans


def validate_paths(paths: Iterable[str | Path], vocabulary: Vocabulary | None = None
                   ) -> list[Problem]:
    """Every problem in the journeys of `paths`; an empty list when all are valid."""
    return check_paths(paths, vocabulary)[1]

