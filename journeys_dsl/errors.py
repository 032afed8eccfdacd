"""Problems found in journey files, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import JourneysError


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a journey file, at a 1-based line and column.

    `path` names the place in the journey, such as `steps[2].branch[0].goto`.
    """

    file: str
    line: int
    col: int
    message: str
    path: str = ""
    warning: bool = False
    """A likely mistake that does not stop the journey (`journeys validate` shows it)."""

    def __str__(self) -> str:
        where = f" (at {self.path})" if self.path else ""
        kind = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}:{self.col}: {kind}{self.message}{where}"


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems in file order (by file, then line, then column), duplicates removed."""
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.col, p.message, p.path))


class JourneyValidationError(JourneysError):
    """One or more journey files are invalid; `problems` lists everything found."""

    code = "journey_invalid"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        return "\n".join([f"{head} in journey files:", *(str(p) for p in self.problems)])
