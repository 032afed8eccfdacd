"""Frequency caps, quiet hours, send windows, consent, unsubscribe and erasure, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
from harness import Engine, at, event, visit

from engine.flow.routing import shard_of
from engine.storage.store import ShardStore

pytestmark = pytest.mark.integration

TWO_MESSAGES = """\
journey: {name}
version: 1
entry:
  event: visit
re_entry: always
steps:
  - id: hello
    after: 1h
    actions:
      - send: {channel}
        template: hello
"""

SEQUENCE = """\
journey: sequence
version: 1
entry:
  event: visit
  when: "customer.visit_count == 1"
steps:
  - id: first
    actions: [{send: email, template: first}]
  - id: second
    at: day 1
    actions: [{send: email, template: second}]
  - id: third
    at: day 2
    actions: [{send: email, template: third}]
  - id: sms
    at: day 3
    actions: [{send: sms, template: sms}]
"""


def make_engine(tmp_path: Path, redis_url: str, key_prefix: str, journeys: dict[str, str],
                policies: str | None) -> Engine:
    folder = tmp_path / "journeys"
    folder.mkdir()
    for name, text in journeys.items():
        (folder / f"{name}.yaml").write_text(text)
    engine = Engine(tmp_path, redis_url, key_prefix, [str(folder)])
    if policies is not None:
        (tmp_path / "policies.yaml").write_text(policies)
        engine.policies = str(tmp_path / "policies.yaml")
    return engine


def berlin(customer: str) -> dict:
    return event("profile", customer, at(-1), timezone="Europe/Berlin",
                 email=f"{customer}@example.com", phone="+4930123456",
                 consents={"email": True, "sms": True, "push": True})


def test_quiet_hours_and_send_windows_move_the_step(tmp_path: Path, redis_url: str,
                                                    key_prefix: str) -> None:
    engine = make_engine(
        tmp_path, redis_url, key_prefix,
        {"evening": TWO_MESSAGES.format(name="evening", channel="push"),
         "texts": TWO_MESSAGES.format(name="texts", channel="sms")},
        'quiet_hours: {from: "21:00", to: "09:00"}\n'
        'send_windows:\n  sms: {from: "10:00", to: "20:00"}\n')
    commands = engine.run([berlin("ann"), visit("ann", at(0, 20, 30)), visit("zed", at(3))])
    send_at = {c["journey"]: c["send_at"] for c in commands}
    # 21:30 in Berlin is quiet: the push waits for 09:00; the SMS also for its 10:00 window
    assert send_at == {"evening": "2025-03-04T08:00:00.000Z",
                       "texts": "2025-03-04T09:00:00.000Z"}
    assert engine.stats()["evening@1|quiet_delayed:hello"] == 1


def test_a_frequency_cap_skips_messages_over_the_limit(tmp_path: Path, redis_url: str,
                                                       key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, {"sequence": SEQUENCE},
                         "frequency_cap: {max: 2, per: 7d, channels: {sms: 1}}\n")
    commands = engine.run([berlin("ann"), visit("ann", at(0)), visit("zed", at(10))])
    assert [c["step"] for c in commands if c["customer_id"] == "ann"] == ["first", "second"]
    stats = engine.stats()
    assert stats["sequence@1|capped:third:email"] == 1
    assert stats["sequence@1|capped:sms:sms"] == 1


def test_a_delaying_cap_sends_when_the_window_has_room(tmp_path: Path, redis_url: str,
                                                       key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, {"sequence": SEQUENCE},
                         "frequency_cap: {max: 2, per: 7d, when_capped: delay}\n")
    commands = engine.run([berlin("ann"), visit("ann", at(0)), visit("zed", at(20))])
    steps = [(c["step"], c["send_at"]) for c in commands if c["customer_id"] == "ann"]
    assert [s for s, _ in steps] == ["first", "second", "third", "sms"]
    # the third waits until the first leaves the 7-day window; the fourth until the second
    assert steps[2][1] == "2025-03-10T11:00:00.001Z"
    assert steps[3][1] == "2025-03-11T11:00:00.001Z"


def test_consent_and_unsubscribe(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, {"sequence": SEQUENCE},
                         "consent: opt_in\n")
    commands = engine.run([
        berlin("ann"), visit("ann", at(0)),
        visit("bob", at(0)),  # never said yes: opt-in sends nothing
        event("message", "ann", at(1, 18), status="unsubscribed", channel="email"),
        visit("zed", at(10)),
    ])
    assert [c["step"] for c in commands if c["customer_id"] == "ann"] == [
        "first", "second", "sms"]  # the day-2 email follows the unsubscribe: not sent
    assert [c for c in commands if c["customer_id"] == "bob"] == []
    stats = engine.stats()
    assert stats["sequence@1|no_consent:third:email"] == 2  # ann unsubscribed; bob never opted in
    assert stats["sequence@1|no_consent:first:email"] == 2  # bob and zed never said yes


def test_forget_erases_the_customer(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    engine = make_engine(tmp_path, redis_url, key_prefix, {"sequence": SEQUENCE}, None)
    engine.run([berlin("ann"), berlin("bob"), visit("ann", at(0)), visit("bob", at(0)),
                visit("zed", at(1, 18))])
    client = redis.Redis.from_url(redis_url)
    store = ShardStore(client, key_prefix, shard_of("ann", engine.shards))
    assert client.exists(store.customer_key("ann"))
    assert client.zscore(store.timers_key, "ann") is not None
    result = subprocess.run(
        [sys.executable, "-m", "engine", "forget", "ann", "--redis", redis_url, "--prefix",
         key_prefix], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "erased ann" in result.stdout and "timer removed" in result.stdout
    assert not client.exists(store.customer_key("ann"))
    assert client.zscore(store.timers_key, "ann") is None
    commands = engine.run([visit("zed", at(10))])
    assert "ann" not in {c["customer_id"] for c in commands}  # ann's journey is gone
    assert "bob" in {c["customer_id"] for c in commands}


GIFT = """\
journey: gift
version: 1
entry:
  event: visit
offers:
  dessert:
    description: A free dessert
    valid_for: 14d
steps:
  - id: gift
    actions:
      - issue: dessert
      - send: telegram
        template: gift
  - id: reminder
    at: day 2
    actions:
      - send: email
        template: gift_reminder
"""


@pytest.mark.parametrize("rule", ["issue", "withhold"])
def test_a_message_with_no_address_is_unreachable(tmp_path: Path, redis_url: str,
                                                  key_prefix: str, rule: str) -> None:
    policies = None if rule == "issue" else f"vouchers_when_unreachable: {rule}\n"
    engine = make_engine(tmp_path, redis_url, key_prefix, {"gift": GIFT}, policies)
    commands = engine.run([
        event("profile", "ann", at(-1), telegram_chat_id="4711", email="ann@example.com"),
        event("profile", "bob", at(-1), email="bob@example.com"),  # no Telegram chat id
        event("profile", "cat", at(-1), telegram_chat_id="4712", email="cat@example.com",
              consents={"telegram": False}),  # an address, but no consent
        visit("ann", at(0)), visit("bob", at(0)), visit("cat", at(0)), visit("zed", at(1)),
        event("profile", "dan", at(9), email="dan@example.com"),  # moves the clock on
    ])
    gifts = [c for c in commands if c["step"] == "gift"]
    assert [(c["customer_id"], c["to"]) for c in gifts] == [("ann", "4711")]
    assert gifts[0]["vars"]["voucher_code"].startswith("DESSERT-")
    stats = engine.stats()
    assert stats["gift@1|sent:gift:telegram"] == 1
    assert stats["gift@1|unreachable:gift:telegram"] == 2  # bob, and zed with no profile
    assert stats["gift@1|no_consent:gift:telegram"] == 1  # cat
    reminders = {c["customer_id"]: c for c in commands if c["step"] == "reminder"}
    assert set(reminders) == {"ann", "bob", "cat"}  # zed has no email address either
    assert stats["gift@1|unreachable:reminder:email"] == 1
    if rule == "issue":  # the documented default: the offer exists at the venue
        assert stats["gift@1|voucher_issued:dessert"] == 4
        assert stats["gift@1|voucher_unreached:dessert"] == 3
        assert "voucher_code" in reminders["bob"]["vars"]
    else:
        assert stats["gift@1|voucher_issued:dessert"] == 1
        assert stats["gift@1|voucher_withheld:dessert"] == 3
        assert "voucher_code" not in reminders["bob"]["vars"]
    assert reminders["ann"]["vars"]["voucher_code"] == gifts[0]["vars"]["voucher_code"]
