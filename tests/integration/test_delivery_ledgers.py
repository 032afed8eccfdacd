"""Both ledgers, SQLite and a real Redis: holds, claims, leases and outcomes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.delivery.ledger import DeliveryLedger, Ledger, RedisLedger, open_ledger


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        opened: Ledger = open_ledger(str(tmp_path / "ledger.sqlite"))
    else:
        url = request.getfixturevalue("redis_url")
        opened = open_ledger(url, request.getfixturevalue("key_prefix"))
    try:
        yield opened
    finally:
        opened.close()


def test_open_ledger_picks_the_store_by_its_spec(tmp_path: Path, redis_url: str,
                                                 key_prefix: str) -> None:
    sqlite = open_ledger(str(tmp_path / "l.sqlite"))
    shared = open_ledger(redis_url, key_prefix)
    try:
        assert isinstance(sqlite, DeliveryLedger) and isinstance(shared, RedisLedger)
    finally:
        sqlite.close()
        shared.close()


def test_a_command_is_claimed_once_until_its_lease_ends(store: Ledger) -> None:
    assert store.claim(["a", "b"], "w1", 60) == {"a", "b"}
    assert store.claim(["a", "b", "c"], "w2", 60) == {"c"}
    store.mark("a", "delivered", 1, "p-1")
    assert store.claim(["a"], "w2", 60) == set()  # delivered is final
    store.mark("b", "failed", 2)
    assert store.claim(["b"], "w2", 60) == {"b"}  # a failed command is tried again
    entry = store.get("b")
    assert entry is not None and entry.status == "sending" and entry.attempts == 2


def test_an_expired_lease_or_a_release_lets_the_command_be_claimed_again(
        store: Ledger) -> None:
    assert store.claim(["a"], "w1", 0.05) == {"a"}
    time.sleep(0.1)
    assert store.claim(["a"], "w2", 60) == {"a"}
    assert store.claim(["a"], "w1", 60) == set()
    assert store.release("w2") == 1
    assert store.claim(["a"], "w1", 60) == {"a"}


def test_held_commands_wait_for_their_time_and_are_claimed_once(store: Ledger) -> None:
    now = int(time.time() * 1000)
    assert store.hold("h1", now + 1000, b'{"command_id": "h1"}')
    assert store.hold("h2", now + 5000, b'{"command_id": "h2"}')
    assert not store.hold("h1", now + 1000, b'{"command_id": "h1"}')  # known already
    assert store.claim(["h1"], "w1", 60) == set()  # held: not claimed from the input
    assert store.held_count() == 2 and store.next_due_ms() == now + 1000
    assert store.claim_due("w1", 60, 10, now) == []
    assert store.claim_due("w1", 60, 10, now + 1000) == [b'{"command_id": "h1"}']
    assert store.claim_due("w2", 60, 10, now + 1000) == []
    assert store.held_count() == 1
    store.mark("h1", "delivered", 1)
    assert store.claim_due("w2", 60, 10, now + 10_000) == [b'{"command_id": "h2"}']
    assert store.held_count() == 0 and store.next_due_ms() is None


def test_a_held_command_whose_worker_died_is_claimed_again(store: Ledger) -> None:
    now = int(time.time() * 1000)
    store.hold("h", now - 1, b'{"command_id": "h"}')
    assert store.claim_due("w1", 0.05, 10) == [b'{"command_id": "h"}']
    time.sleep(0.1)
    assert store.claim_due("w2", 60, 10) == [b'{"command_id": "h"}']
    store.mark("h", "delivered", 1)
    time.sleep(0.05)
    assert store.claim_due("w3", 60, 10) == []
    assert store.is_delivered("h")


def test_an_earlier_ledger_file_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE deliveries (command_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
               "attempts INTEGER NOT NULL, provider_id TEXT, detail TEXT NOT NULL, "
               "updated_at TEXT NOT NULL)")
    db.execute("INSERT INTO deliveries VALUES ('old', 'delivered', 1, NULL, '', 'x')")
    db.commit()
    db.close()
    with DeliveryLedger(path) as ledger:
        assert ledger.is_delivered("old")
        assert ledger.claim(["old", "new"], "w", 60) == {"new"}


def test_an_attempt_is_marked_until_an_outcome_is_recorded(store: Ledger) -> None:
    assert store.claim(["a", "b", "c"], "w1", 60) == {"a", "b", "c"}
    assert store.interrupted(["a", "b", "c"]) == set()
    store.attempt("a")
    store.attempt("b")
    assert store.interrupted(["a", "b", "c", "never-seen"]) == {"a", "b"}
    assert store.interrupted([]) == set()
    store.mark("b", "failed", 1, None, "HTTP 503")
    assert store.interrupted(["a", "b"]) == {"a"}
    assert store.claim(["b"], "w1", 60) == {"b"}  # failed: claimed again on replay,
    assert store.interrupted(["b"]) == set()      # without the earlier attempt's mark
    assert store.release("w1") == 3  # a, b and c
    assert store.claim(["a"], "w2", 60) == {"a"}  # a crash: the mark outlives the claim
    assert store.interrupted(["a"]) == {"a"}


def test_unknown_is_final(store: Ledger) -> None:
    now = int(time.time() * 1000)
    assert store.claim(["u"], "w1", 0.05) == {"u"}
    store.attempt("u")
    store.record_unknown("u", "the worker stopped during the send")
    entry = store.get("u")
    assert entry is not None
    assert (entry.status, entry.detail) == ("unknown", "the worker stopped during the send")
    assert store.interrupted(["u"]) == set()
    time.sleep(0.1)
    assert store.claim(["u"], "w2", 60) == set()
    assert not store.hold("u", now + 1000, b'{"command_id": "u"}')
    assert store.claim_due("w2", 60, 10, now + 10_000) == []
    assert not store.is_delivered("u")


def test_a_held_command_keeps_its_mark_when_claimed_again(store: Ledger) -> None:
    now = int(time.time() * 1000)
    store.hold("h", now - 1, b'{"command_id": "h"}')
    assert store.claim_due("w1", 60, 10) == [b'{"command_id": "h"}']
    store.attempt("h")
    assert store.release("w1") == 1
    assert store.claim_due("w1", 60, 10) == [b'{"command_id": "h"}']
    assert store.interrupted(["h"]) == {"h"}
