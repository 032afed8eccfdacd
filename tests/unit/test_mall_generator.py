"""The mall generator: seeded, in event-time order, valid events, and a last day that
brings every kind of guest."""

from __future__ import annotations

import io
from collections import Counter

import orjson
import pytest

from engine.app.generator import GeneratorConfigError, write_stream
from engine.app.generator_cli import main
from engine.app.mall_generator import MallConfig, generate_mall_events
from engine.core.decoding import decode_line

SMALL = MallConfig(guests=300, days=120, start="2025-08-03")


def test_the_same_config_gives_the_same_events() -> None:
    assert generate_mall_events(SMALL) == generate_mall_events(SMALL)
    assert generate_mall_events(SMALL) != generate_mall_events(MallConfig(
        seed=8, guests=300, days=120, start="2025-08-03"))


def test_events_are_valid_and_in_time_order() -> None:
    out = io.BytesIO()
    count = write_stream(iter(generate_mall_events(SMALL)), out)
    events = [decode_line(line) for line in out.getvalue().splitlines()]
    assert len(events) == count > 1000
    times = [event.ts for event in events]
    assert times == sorted(times)
    kinds = Counter(event.type for event in events)
    assert kinds["presence"] > kinds["visit"] > 0 and kinds["profile"] <= 300
    sources = Counter(e.data.get("source") for e in events if e.type == "presence")
    assert sources["wallet_pass"] and sources["wifi"] and sources["beacon"]
    first_events = {}
    for event in events:
        first_events.setdefault(event.customer_id, event.type)
    assert set(first_events.values()) == {"profile"}


def test_the_last_day_is_the_busiest() -> None:
    events = generate_mall_events(SMALL)
    days = Counter(str(event["ts"])[:10] for event in events if event["type"] == "presence")
    busiest, _ = days.most_common(1)[0]
    assert busiest == "2025-11-30"


def test_the_command_line_writes_a_mall(tmp_path: object, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert main(["--kind", "mall", "--customers", "50", "--days", "30", "--ts-format", "ms"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(isinstance(orjson.loads(line)["ts"], int) for line in lines)


def test_a_bad_config_is_refused() -> None:
    with pytest.raises(GeneratorConfigError, match="days must be >= 1"):
        MallConfig(days=0)
