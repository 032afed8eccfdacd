"""`customer.recommended_items`: items often bought with the customer's favourites, learned
from the chain's baskets, driven through the real dataflow with the pairing-suggestion
example (examples/journeys/extras/pairing_suggestion.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import EXAMPLES, SCENARIO_SKEW_MS, at, day_of, read_jsonl, visit, with_addresses

from connectors.delivery.template_check import check_templates
from connectors.delivery.templates import TemplateStore
from engine.flow.runner import RunOptions, run_on
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

PAIRING = str(EXAMPLES / "extras" / "pairing_suggestion.yaml")
TEMPLATES = EXAMPLES.parent / "templates"


def basket(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "category": "menu", "price": 10.0} for name in names]


def chain() -> list[dict[str, Any]]:
    """Week 1 (from Monday 2025-03-03): everyone who buys the steak also buys red wine;
    a few take fries too. Week 2: three regulars come back."""
    events = []
    for i in range(40):
        names = ("signature steak", "red wine", "fries") if i % 4 == 0 else (
            "signature steak", "red wine")
        events.append(visit(f"guest{i}", at(i % 6, 12 + i % 9), items=basket(*names)))
    for i in range(10):
        events.append(visit(f"pasta{i}", at(i % 6, 13), items=basket("pasta", "lemonade")))
    for day in (1, 3, 5):
        # a steak fan who never had wine; a connoisseur who always has it; a pasta lover
        events.append(visit("fan", at(day, 19), items=basket("signature steak")))
        events.append(visit("connoisseur", at(day, 20),
                            items=basket("signature steak", "red wine")))
        events.append(visit("pasta_lover", at(day, 13), items=basket("pasta", "lemonade")))
    for customer in ("fan", "connoisseur", "pasta_lover"):
        events.append(visit(customer, at(8, 19), items=basket("signature steak")
                            if customer != "pasta_lover" else basket("pasta")))
    events.append(visit("bystander", at(20), items=[]))
    events.sort(key=lambda e: e["ts"])
    return with_addresses(events)


def run(tmp_path: Path, redis_url: str, prefix: str, events: list[dict[str, Any]], *,
        shards: int, batch_lines: int, part: str = "") -> list[dict[str, Any]]:
    name = f"{prefix}-{shards}-{batch_lines}"
    events_path = tmp_path / f"{name}{part}.jsonl"
    events_path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    commands = tmp_path / f"{name}{part}-commands.jsonl"
    options = RunOptions(journeys=[PAIRING], events=str(events_path), commands=str(commands),
                         dead_letter=str(tmp_path / f"{name}{part}-dead.jsonl"),
                         redis_url=redis_url, shards=shards, prefix=name,
                         batch_lines=batch_lines, max_skew_ms=SCENARIO_SKEW_MS)
    run_on(redis_url, options, load_journeys([PAIRING]))
    assert read_jsonl(tmp_path / f"{name}{part}-dead.jsonl") == []
    return read_jsonl(commands)


def test_a_steak_fan_is_offered_red_wine(tmp_path: Path, redis_url: str,
                                         key_prefix: str) -> None:
    commands = run(tmp_path, redis_url, key_prefix, chain(), shards=4, batch_lines=7)
    by_customer = {c["customer_id"]: c for c in commands}
    # the pasta lover has had everything pasta goes with: nothing to suggest, no entry;
    # in week 1 nobody entered: the chain's baskets are read as of the start of the week
    assert sorted(by_customer) == ["connoisseur", "fan"]
    fan = by_customer["fan"]
    assert fan["template"] == "pairing_suggestion"
    assert int(day_of(fan["send_at"])) == 10  # day 2 after the visit of day 8
    assert fan["vars"]["dish"] == "signature steak"
    assert fan["vars"]["pairing"] == "red wine"
    assert fan["vars"]["suggestions"] == ["red wine", "fries"]
    # what the customer already orders is never suggested
    connoisseur = by_customer["connoisseur"]["vars"]
    assert connoisseur["pairing"] == "fries"
    assert connoisseur["suggestions"] == ["fries"]
    # the example's templates render the suggestions, in English and German
    assert check_templates([PAIRING], TEMPLATES, ("en", "de")) == []
    store = TemplateStore(TEMPLATES)
    english = store.render(fan)
    assert "often pair it with red wine." in english.text
    assert "Also popular with them: fries." in english.text
    german = store.render({**fan, "language": "de"})
    assert "bestellen dazu gern red wine." in german.text
    assert "Also popular" not in store.render(by_customer["connoisseur"]).text


def test_the_same_commands_whatever_the_shards_and_batches(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    events = chain()
    outputs = [sorted(orjson.dumps(c) for c in run(tmp_path, redis_url, key_prefix, events,
                                                   shards=shards, batch_lines=lines))
               for shards, lines in ((1, 1000), (4, 1), (4, 7), (3, 100))]
    assert outputs[0]
    assert all(output == outputs[0] for output in outputs[1:])


def test_a_restart_reads_the_counts_it_stored(tmp_path: Path, redis_url: str,
                                              key_prefix: str) -> None:
    """Week 1 in one run, the rest in a second run on the kept state: the basket counts and
    the weekly text come back from Redis, and the commands are those of one run."""
    events = chain()
    whole = run(tmp_path, redis_url, f"{key_prefix}-whole", events, shards=4, batch_lines=7)
    split = next(i for i, e in enumerate(events) if day_of(e["ts"]) >= 8)
    first = run(tmp_path, redis_url, key_prefix, events[:split], shards=4, batch_lines=7,
                part="-a")
    second = run(tmp_path, redis_url, key_prefix, events[split:], shards=4, batch_lines=7,
                 part="-b")
    assert first == []
    assert {c["customer_id"] for c in whole} == {"fan", "connoisseur"}
    assert sorted(orjson.dumps(c) for c in second) == sorted(orjson.dumps(c) for c in whole)
