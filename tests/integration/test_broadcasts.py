"""Broadcast journeys through the real dataflow: the audience at each customer's local time,
holdout, consent, caps, the sending rate, recurrence, and the walk's durable cursor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import Engine, at, event, visit

pytestmark = pytest.mark.integration

VIP_BROADCAST = """\
journey: vip_evening
version: 1
entry:
  broadcast:
    at: "2025-03-10 10:00"
    audience: "'vip' in customer.segments"
{extra}holdout: {holdout}
steps:
  - id: invite
    actions:
      - send: email
        template: vip_evening
"""

ZONES = {"ber": "Europe/Berlin", "nyc": "America/New_York", "tyo": "Asia/Tokyo"}


def make_engine(tmp_path: Path, redis_url: str, key_prefix: str, text: str,
                policies: str | None = None, shards: int = 4) -> Engine:
    folder = tmp_path / "journeys"
    folder.mkdir(exist_ok=True)
    (folder / "broadcast.yaml").write_text(text)
    engine = Engine(tmp_path, redis_url, key_prefix, [str(folder)], shards=shards)
    if policies is not None:
        (tmp_path / "policies.yaml").write_text(policies)
        engine.policies = str(tmp_path / "policies.yaml")
    return engine


def customer(name: str, zone: str | None, amount: float, day: float = 0,
             **profile: Any) -> list[dict[str, Any]]:
    fields: dict[str, Any] = {"email": f"{name}@example.com", **profile}
    if zone is not None:
        fields["timezone"] = zone
    return [event("profile", name, at(day, 9), **fields), visit(name, at(day), amount=amount)]


def population() -> list[dict[str, Any]]:
    """Two VIPs in each of three zones and one without a zone, among 21 low spenders."""
    events: list[dict[str, Any]] = []
    for short, zone in ZONES.items():
        for n in range(2):
            events += customer(f"vip_{short}_{n}", zone, 900 + 10 * n)
    events += customer("vip_utc", None, 950)
    for n in range(21):
        events += customer(f"low_{n:02d}", "Europe/Berlin", 20)
    return sorted(events, key=lambda e: e["ts"])


def test_a_broadcast_reaches_exactly_the_audience_at_local_time(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix,
                         VIP_BROADCAST.format(extra="", holdout="0%"))
    # the clock passes the broadcast time in every zone with a later event
    commands = engine.run([*population(), visit("low_00", at(9, 12), amount=20)])
    send_at = {c["customer_id"]: c["send_at"] for c in commands}
    assert send_at == {
        "vip_ber_0": "2025-03-10T09:00:00.000Z", "vip_ber_1": "2025-03-10T09:00:00.000Z",
        "vip_nyc_0": "2025-03-10T14:00:00.000Z", "vip_nyc_1": "2025-03-10T14:00:00.000Z",
        "vip_tyo_0": "2025-03-10T01:00:00.000Z", "vip_tyo_1": "2025-03-10T01:00:00.000Z",
        "vip_utc": "2025-03-10T10:00:00.000Z",  # no timezone in the profile: UTC
    }
    assert {c["journey"] for c in commands} == {"vip_evening"}
    assert engine.stats()["vip_evening@1|entered"] == 7
