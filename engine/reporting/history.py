"""Facts about a history file for the report's header: events, customers, period."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.core.decoding import decode_line
from engine.core.events import EventError
from engine.core.timeutil import iso_utc
from engine.reporting.errors import ReportError


@dataclass(frozen=True)
class HistoryFacts:
    lines: int
    size_bytes: int
    events: int
    """Lines that decode as valid events."""
    customers: int
    first_ts: int | None
    last_ts: int | None

    @property
    def period(self) -> tuple[str | None, str | None]:
        """First and last event time as ISO dates (UTC)."""
        return (iso_utc(self.first_ts)[:10] if self.first_ts is not None else None,
                iso_utc(self.last_ts)[:10] if self.last_ts is not None else None)


def scan_history(path: str | Path, until_ms: int | None = None) -> HistoryFacts:
    """Count the file's lines, valid events and customers, and find its period.

    Events after `until_ms` count as lines but not as events of the period.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ReportError(f"cannot read the events file {file}: {exc.strerror or exc}") from exc
    customers: set[str] = set()
    first: int | None = None
    last: int | None = None
    events = lines = 0
    for position, line in _lines(data):
        lines += 1
        try:
            event = decode_line(line, position)
        except EventError:
            continue
        if until_ms is not None and event.ts > until_ms:
            continue
        events += 1
        customers.add(event.customer_id)
        first = event.ts if first is None else min(first, event.ts)
        last = event.ts if last is None else max(last, event.ts)
    return HistoryFacts(lines, len(data), events, len(customers), first, last)


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    position = 0
    for line in data.split(b"\n"):
        if line.strip():
            out.append((position, line))
        position += len(line) + 1
    return out
