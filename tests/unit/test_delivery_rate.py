"""Per-channel rates: the token bucket and the config keys that set it."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from connectors.delivery.config import DeliveryConfigError, RateLimit, parse_delivery_config
from connectors.delivery.rate import TokenBucket


class FakeTime:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_a_burst_goes_at_once_then_sends_are_spaced_by_the_rate() -> None:
    time = FakeTime()
    bucket = TokenBucket(10.0, 3, clock=time.clock, sleep=time.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.1, 0.1])
    assert time.now == pytest.approx(100.3)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    time = FakeTime()
    bucket = TokenBucket(5.0, 2, clock=time.clock, sleep=time.sleep)
    bucket.acquire()
    bucket.acquire()
    time.now += 60.0
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.2])


def test_threads_waiting_together_are_served_one_rate_step_apart() -> None:
    reserved: list[float] = []
    bucket = TokenBucket(100.0, 1, clock=lambda: 0.0, sleep=reserved.append)
    threads = [threading.Thread(target=bucket.acquire) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(reserved) == pytest.approx([0.01 * n for n in range(1, 9)])


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_bucket_needs_a_positive_rate_and_burst(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def config(**webhook: Any) -> dict[str, Any]:
    return {"channels": {"webhook": {"url": "https://x.example/h", "secret_env": "S",
                                     **webhook}}}


def test_rates_come_from_the_channel_section() -> None:
    parsed = parse_delivery_config(config(rate_per_second=80, burst=100), "d.yaml", {"S": "s"})
    assert parsed.channels["webhook"].rate == RateLimit(80.0, 100)
    parsed = parse_delivery_config(config(rate_per_second=2.5), "d.yaml", {"S": "s"})
    assert parsed.channels["webhook"].rate == RateLimit(2.5, 3)
    assert parse_delivery_config(config(), "d.yaml", {"S": "s"}).channels["webhook"].rate \
        is None


@pytest.mark.parametrize(("settings", "message"), [
    ({"rate_per_second": 0}, "channels.webhook.rate_per_second: must be above 0"),
    ({"rate_per_second": -3}, "channels.webhook.rate_per_second: must be at least 0"),
    ({"rate_per_second": "fast"}, "channels.webhook.rate_per_second: must be a number"),
    ({"burst": 5}, "channels.webhook.burst: needs rate_per_second as well"),
    ({"rate_per_second": 5, "burst": 0}, "channels.webhook.burst: must be at least 1"),
    ({"rate_per_second": 5, "burst": 2.5}, "channels.webhook.burst: must be a whole number"),
    ({"rate_per_secnd": 5}, "channels.webhook.rate_per_secnd: is not a known setting"),
])
def test_bad_rates_name_the_file_and_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(DeliveryConfigError) as raised:
        parse_delivery_config(config(**settings), "delivery.yaml", {"S": "s"})
    assert str(raised.value).startswith(f"delivery.yaml: {message}")
