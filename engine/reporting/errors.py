"""Errors of the reporting package."""

from __future__ import annotations


class ReportError(RuntimeError):
    """A report could not be produced; the message says what and where."""


class CounterError(ReportError):
    """A counter name or value does not have the expected form."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"counter {name!r}: {reason}")
        self.name = name
        self.reason = reason
