"""`journeys backtest` and `journeys report`: counters in, HTML, table or JSON out."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

import orjson
import redis

from engine.core.declared_events import install as install_event_types
from engine.core.events import EventError, parse_timestamp
from engine.flow.runner import RunOptions, RunSummary, redis_endpoint, run_on
from engine.reporting.errors import ReportError
from engine.reporting.history import scan_history
from engine.reporting.html import render_html
from engine.reporting.model import Report, RunFacts
from engine.reporting.progress import ReplayProgress
from engine.reporting.stats import build_report
from engine.reporting.terminal import format_report, report_json
from engine.storage.redis_client import connect
from engine.storage.store import read_stats
from journeys_dsl.event_types import journey_vocabulary, load_event_types
from journeys_dsl.loader import load_journeys
from journeys_dsl.plan import JourneyPlan

BACKTEST_PREFIX = "backtest"
BACKTEST_ORIGIN = "backtest"
"""The `origin` every command of a backtest carries: `journeys deliver` refuses them."""


@dataclass(frozen=True)
class BacktestResult:
    report: Report
    summary: RunSummary
    html: Path
    commands: Path
    dead_letter: Path


def parse_until(value: str) -> int:
    """Epoch ms of an ISO-8601 time with offset, epoch ms digits, or a date (its end, UTC)."""
    text = value.strip()
    try:
        return parse_timestamp(int(text) if text.isdigit() else text)[0]
    except EventError:
        pass
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"--until {value!r}: expected a date (2025-06-30), an ISO-8601 time "
                          "with offset, or epoch milliseconds") from None
    end = datetime(day.year, day.month, day.day, 23, 59, 59, 999_000, tzinfo=UTC)
    return int(end.timestamp() * 1000)


def side_paths(out_html: Path) -> tuple[Path, Path]:
    """Where a backtest writes its commands and dead letters: next to the report."""
    return (out_html.with_name(out_html.name + ".commands.jsonl"),
            out_html.with_name(out_html.name + ".dead-letter.jsonl"))


def backtest(journeys: list[str], events: str, out_html: Path, *, segments: str | None = None,
             scores: str | None = None, policies: str | None = None,
             until: str | None = None, shards: int = 8,
             progress: TextIO | None = None,
             event_types: str | None = None) -> BacktestResult:
    """Replay `events` on the event clock through the journeys on a private embedded Redis,
    write the HTML report to `out_html`, and return the report's model."""
    plans = load_journeys(journeys, journey_vocabulary(segments, event_types))
    install_event_types(load_event_types(event_types))  # the history is read with them
    until_ms = parse_until(until) if until else None
    history = scan_history(events, until_ms)
    commands, dead_letter = side_paths(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    unmarked = commands.with_name(commands.name + ".partial")
    for stale in (commands, dead_letter, unmarked):
        stale.unlink(missing_ok=True)
    source_id = f"backtest:{Path(events).resolve()}"
    options = RunOptions(
        journeys=journeys, events=events, segments=segments, scores=scores, policies=policies,
        event_types=event_types,
        commands=str(unmarked), dead_letter=str(dead_letter), shards=shards,
        prefix=BACKTEST_PREFIX, source_id=source_id, until_ms=until_ms,
    )
    with redis_endpoint(None) as url:
        if progress is not None:
            with ReplayProgress(progress, url, BACKTEST_PREFIX, shards, source_id,
                                history.size_bytes, history.lines):
                summary = run_on(url, options, plans)
        else:
            summary = run_on(url, options, plans)
        client = connect(url)
        try:
            stats = read_stats(client, BACKTEST_PREFIX, shards)
        finally:
            client.close()
    mark_backtest_commands(unmarked, commands)
    start, end = history.period
    facts = RunFacts(
        generated_at=_now(), source=f"Backtest of {Path(events).name}"
        + (f" until {until}" if until else ""),
        events=summary.events_read, dead_letters=summary.dead_letters,
        commands=summary.commands, customers=history.customers, period_start=start,
        period_end=end, seconds=round(summary.seconds, 2),
    )
    report = build_report(stats, plans, facts)
    _write(out_html, render_html(report, "Journey backtest"))
    return BacktestResult(report, summary, out_html, commands, dead_letter)


def mark_backtest_commands(unmarked: Path, commands: Path) -> None:
    """Write the commands of `unmarked` to `commands` with `"origin": "backtest"`, then
    remove `unmarked`: only a finished backtest's commands appear, and all marked."""
    written = commands.with_name(commands.name + ".tmp")
    with written.open("wb") as out:
        if unmarked.exists():
            with unmarked.open("rb") as lines:
                for line in lines:
                    if line.strip():
                        command = orjson.loads(line)
                        command["origin"] = BACKTEST_ORIGIN
                        out.write(orjson.dumps(command) + b"\n")
    os.replace(written, commands)
    unmarked.unlink(missing_ok=True)


def live_report(redis_url: str, prefix: str, shards: int,
                plans: list[JourneyPlan]) -> Report:
    """The report of the counters a running engine keeps in Redis."""
    client = connect(redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        stats = read_stats(client, prefix, shards)
    except redis.RedisError as exc:
        raise ReportError(f"cannot read counters under prefix {prefix!r} at {redis_url}: "
                          f"{exc}") from exc
    finally:
        client.close()
    facts = RunFacts(generated_at=_now(), source=f"Counters under prefix {prefix!r}")
    return build_report(stats, plans, facts)


def report_command(redis_url: str, prefix: str, shards: int, journeys_paths: list[str],
                   as_json: bool, out: TextIO) -> int:
    """`journeys report`: print the live counters as tables (or JSON); 1 on failure."""
    try:
        plans = load_journeys(journeys_paths) if journeys_paths else []
        report = live_report(redis_url, prefix, shards, plans)
    except ReportError as exc:
        print(f"journeys report: {exc}", file=sys.stderr)
        return 1
    out.write(report_json(report) if as_json else format_report(report))
    return 0


def _write(path: Path, content: str) -> None:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report {path}: {exc.strerror or exc}") from exc


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
