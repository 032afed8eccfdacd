"""Timers that fell due while the engine was down fire once, late, after a restart."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from harness import read_jsonl

from engine.flow.runner import RunOptions, RunSummary, run_on
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

PING = """\
journey: ping
version: 1
entry:
  event: visit
steps:
  - id: later
    after: 2s
    actions:
      - send: push
        template: later
"""
DELAY_MS = 2000
LEAD_MS = 1000
"""The visit is stamped this far ahead of the moment it is written: starting a run (Redis,
catalog, dataflow) takes about half a second before its 1.5 s idle window begins, and the
first run must end before the step falls due. The wall clock accepts events up to a day
ahead, so this is still an ordinary visit."""


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_timer_due_during_downtime_fires_once_late_after_restart(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "ping.yaml").write_text(PING)
    plans = load_journeys([str(folder)])
    events_path = tmp_path / "events.jsonl"

    def run(number: int) -> tuple[list[dict], RunSummary]:
        commands = tmp_path / f"commands-{number}.jsonl"
        options = RunOptions(
            journeys=[str(folder)], events=str(events_path), commands=str(commands),
            dead_letter=str(tmp_path / f"dead-{number}.jsonl"), redis_url=redis_url,
            prefix=key_prefix, shards=2, source_id="late-timers", clock="wall", tail=True,
            tick_s=0.1, idle_exit_s=1.5)
        summary = run_on(redis_url, options, plans)
        assert read_jsonl(tmp_path / f"dead-{number}.jsonl") == []
        return read_jsonl(commands), summary

    visit_ms = int(time.time() * 1000) + LEAD_MS
    events_path.write_bytes(orjson.dumps(
        {"event_id": "late-1", "customer_id": "ann", "type": "visit", "ts": visit_ms,
         "venue_id": "v1", "amount": 10}) + b"\n")
    due_ms = visit_ms + DELAY_MS

    first, summary = run(1)
    stopped_ms = int(time.time() * 1000)
    assert first == []
    assert stopped_ms < due_ms, (
        f"the first run ended {stopped_ms - due_ms} ms after the step fell due: it could "
        "have fired the timer on time, so this run proves nothing about downtime")
    assert summary.events_read == 1

    time.sleep(max(0.0, (visit_ms + 3000 - time.time() * 1000) / 1000))  # the engine is down

    second, summary = run(2)
    assert summary.commands == 1  # the visit's line is read again and skipped: applied
    assert [(c["customer_id"], c["step"], c["channel"]) for c in second] == [
        ("ann", "later", "push")]
    command = second[0]
    assert _ms(command["send_at"]) == due_ms  # late: the due time, now in the past
    assert _ms(command["send_at"]) < int(time.time() * 1000) - 1000

    third, summary = run(3)
    assert third == []
    assert summary.commands == 0
