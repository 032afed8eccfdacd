"""The delivery ledger: what it records, across runs and connections."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.delivery.service import DeliveryLedger


def test_mark_records_and_get_reads_back(tmp_path: Path) -> None:
    at = datetime(2025, 3, 3, 10, 0, 0, 123000, tzinfo=UTC)
    with DeliveryLedger(tmp_path / "l.sqlite") as ledger:
        assert ledger.get("a") is None and not ledger.is_delivered("a")
        entry = ledger.mark("a", "failed", 3, None, "HTTP 503", at)
        assert (entry.status, entry.attempts, entry.provider_id) == ("failed", 3, None)
        assert entry.updated_at == "2025-03-03T10:00:00.123Z"
        entry = ledger.mark("a", "delivered", 1, "rcv-9", "HTTP 200", at)
        assert (entry.status, entry.attempts, entry.provider_id) == ("delivered", 4, "rcv-9")
        assert ledger.is_delivered("a")
        ledger.mark("b", "bounced", 1)
        assert ledger.counts() == {"delivered": 1, "bounced": 1}


def test_entries_survive_reopening_and_are_seen_by_other_connections(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with DeliveryLedger(path) as ledger:
        ledger.mark("a", "delivered", 1, "p1")
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT status FROM deliveries").fetchall() == [("delivered",)]
        finally:
            other.close()
    with DeliveryLedger(path) as reopened:
        assert reopened.is_delivered("a")


def test_invalid_marks_write_nothing(tmp_path: Path) -> None:
    with DeliveryLedger(tmp_path / "l.sqlite") as ledger:
        with pytest.raises(ValueError, match="status must be one of"):
            ledger.mark("a", "sent", 1)
        with pytest.raises(ValueError, match="negative"):
            ledger.mark("a", "failed", -1)
        assert ledger.get("a") is None


def test_a_failed_write_rolls_back(tmp_path: Path) -> None:
    with DeliveryLedger(tmp_path / "l.sqlite") as ledger:
        ledger.mark("a", "failed", 1)
        ledger._db.execute("CREATE TRIGGER refuse BEFORE UPDATE ON deliveries "
                           "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        with pytest.raises(sqlite3.IntegrityError):
            ledger.mark("a", "delivered", 1)
        entry = ledger.get("a")
        assert entry is not None and entry.status == "failed" and entry.attempts == 1
