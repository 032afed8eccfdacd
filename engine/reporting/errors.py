"""Errors of the reporting package."""

from __future__ import annotations

from engine.errors import JourneysError


class ReportError(JourneysError, RuntimeError):
    """A report could not be produced; the message says what and where."""

    code = "report"


class CounterError(ReportError):
    """A counter name or value does not have the expected form."""

    code = "report_counter"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"counter {name!r}: {reason}")
        self.name = name
        self.reason = reason
