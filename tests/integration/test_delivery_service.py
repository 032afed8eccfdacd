"""`journeys deliver` as a service, against a real HTTP receiver on loopback, real
processes, a real Redis and a real Kafka-protocol broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from delivery_receiver import (
    SECRET,
    SECRET_ENV,
    Received,
    command,
    read_jsonl,
    receiver,
    write_commands,
    write_setup,
)
from kafka_broker import create_topics, produce, tansu_broker

from engine.app.cli import main as journeys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def received() -> Iterator[Received]:
    with receiver() as running:
        yield running


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def deliver_args(paths: dict[str, Path], ledger: str | Path, *extra: str) -> list[str]:
    return ["--commands", str(paths["commands"]), "--config", str(paths["config"]),
            "--templates", str(paths["templates"]), "--events-out", str(paths["events"]),
            "--dead-letter", str(paths["dead"]), "--ledger", str(ledger), *extra]


def worker(args: list[str]) -> subprocess.Popen[str]:
    """`journeys deliver ARGS` in its own process."""
    return subprocess.Popen([sys.executable, "-m", "engine.app.cli", "deliver", *args], cwd=ROOT,
                            env={**os.environ, SECRET_ENV: SECRET}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def status_in(ledger: Path, command_id: str) -> str | None:
    """The command's status in a SQLite ledger (None: not there yet)."""
    import sqlite3

    db = sqlite3.connect(ledger)
    try:
        row = db.execute("SELECT status FROM deliveries WHERE command_id = ?",
                         (command_id,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()
    return None if row is None else str(row[0])


def test_a_held_command_survives_kill_9_and_is_sent_once_when_due(
        received: Received, tmp_path: Path) -> None:
    paths = write_setup(tmp_path, received.url)
    send_at = datetime.now(UTC) + timedelta(seconds=6)
    write_commands(paths["commands"], [command("now"), command("later", iso(send_at))])
    ledger = tmp_path / "ledger.sqlite"
    args = deliver_args(paths, ledger, "--serve", "--worker-id", "w1")

    first = worker(args)
    try:
        assert received.wait_for(1, 30), first.stderr
        assert wait_until(lambda: status_in(ledger, "later") == "held", 10)
        # the receiver has the first command before the ledger does: a kill in between
        # would rightly resend it (webhooks are at least once), which is not this test
        assert wait_until(lambda: status_in(ledger, "now") == "delivered", 10)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
        first.communicate()
    assert received.keys() == ["now"]

    second = worker(args)
    try:
        assert received.wait_for(2, 40), "the held command was not sent after the restart"
        time.sleep(1.0)  # room for a wrong second send
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=30)
    finally:
        second.kill()
    assert second.returncode == 0, err
    assert received.counts() == {"now": 1, "later": 1}
    arrival = dict(received.arrivals)["later"]
    assert arrival >= send_at.timestamp() - 0.05
    assert "1 delivered" in out
    assert [e["event_id"] for e in read_jsonl(paths["events"])] == [
        "msg-now-delivered", "msg-later-delivered"]


def test_commands_of_a_backtest_are_refused_unless_allowed(
        received: Received, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_setup(tmp_path, received.url)
    write_commands(paths["commands"], [command("b1", origin="backtest"),
                                       command("b2", origin="backtest")])
    ledger = tmp_path / "ledger.sqlite"

    assert journeys(["deliver", *deliver_args(paths, ledger)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("journeys deliver: ") and "commands.jsonl:1" in err
    assert "written by a backtest" in err and "--allow-backtest" in err
    assert received.keys() == []

    assert journeys(["deliver", *deliver_args(paths, ledger, "--allow-backtest")]) == 0
    assert sorted(received.keys()) == ["b1", "b2"]


def test_the_channel_rate_spaces_the_sends(received: Received, tmp_path: Path) -> None:
    paths = write_setup(tmp_path, received.url, "rate_per_second: 20, burst: 2")
    write_commands(paths["commands"], [command(f"r{n:02d}") for n in range(32)])

    assert journeys(["deliver", *deliver_args(paths, tmp_path / "l.sqlite")]) == 0

    times = sorted(at for _key, at in received.arrivals)
    assert len(times) == 32
    # 2 at once, then 30 at 20/s: at least 1.5 s; the bound leaves room for timing noise
    assert times[-1] - times[0] >= 1.3
    # no more than burst + rate * span in any stretch of the run
    for start, began in enumerate(times):
        within = [t for t in times[start:] if t - began <= 0.5]
        assert len(within) <= 2 + 20 * 0.5 + 1


def test_two_workers_sharing_a_redis_ledger_send_each_command_once(
        received: Received, tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    paths = write_setup(tmp_path, received.url)
    write_commands(paths["commands"], [command(f"s{n:04d}") for n in range(600)])
    runs = []
    for name in ("a", "b"):
        outputs = {**paths, "events": tmp_path / f"events-{name}.jsonl",
                   "dead": tmp_path / f"dead-{name}.jsonl"}
        runs.append(worker(deliver_args(outputs, redis_url, "--ledger-prefix", key_prefix,
                                        "--batch", "50", "--concurrency", "8")))
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    counts = received.counts()
    assert len(counts) == 600 and set(counts.values()) == {1}
    delivered = [int(out.split(" delivered")[0]) for out, _err in outputs]
    assert sum(delivered) == 600
    events = read_jsonl(tmp_path / "events-a.jsonl") + read_jsonl(tmp_path / "events-b.jsonl")
    assert len({e["command_id"] for e in events}) == len(events) == 600


def test_commands_are_read_from_kafka_and_offsets_committed_after_the_ledger(
        received: Received, tmp_path: Path) -> None:
    paths = write_setup(tmp_path, received.url)
    later = iso(datetime.now(UTC) + timedelta(days=200))
    commands = [command(f"k{n:03d}") for n in range(40)] + [command("k-later", later)]
    with tansu_broker() as bootstrap:
        topic = f"commands-{time.time_ns()}"
        create_topics(bootstrap, {topic: 2})
        produce(bootstrap, topic, [(c["customer_id"], orjson.dumps(c)) for c in commands])
        args = ["--kafka", bootstrap, "--commands-topic", topic, "--kafka-group", "deliver-t",
                *deliver_args(paths, tmp_path / "l.sqlite")[2:]]

        assert journeys(["deliver", *args]) == 0
        assert sorted(received.keys()) == sorted(f"k{n:03d}" for n in range(40))
        assert committed(bootstrap, topic, "deliver-t") == 41

        assert journeys(["deliver", *args]) == 0  # nothing new: offsets were committed
        assert len(received.keys()) == 40


def test_a_serving_worker_sends_commands_as_they_arrive_on_kafka(
        received: Received, tmp_path: Path) -> None:
    paths = write_setup(tmp_path, received.url)
    with tansu_broker() as bootstrap:
        topic = f"commands-{time.time_ns()}"
        create_topics(bootstrap, {topic: 2})
        serving = worker(["--kafka", bootstrap, "--commands-topic", topic, "--serve",
                          *deliver_args(paths, tmp_path / "l.sqlite")[2:]])
        try:
            time.sleep(2.0)  # the worker is up and waiting
            assert serving.poll() is None
            produce(bootstrap, topic, [(f"c{n}", orjson.dumps(command(f"live{n}")))
                                       for n in range(5)])
            assert received.wait_for(5, 30)
            assert wait_until(lambda: committed(bootstrap, topic, "journeys-deliver") == 5,
                              10)
            serving.send_signal(signal.SIGTERM)
            out, err = serving.communicate(timeout=30)
        finally:
            serving.kill()
        assert serving.returncode == 0, err
        assert "5 delivered" in out
        assert sorted(received.keys()) == [f"live{n}" for n in range(5)]


def committed(bootstrap: str, topic: str, group: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def test_a_dry_run_renders_everything_and_sends_nothing(
        received: Received, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_setup(tmp_path, received.url)
    later = iso(datetime.now(UTC) + timedelta(days=30))
    write_commands(paths["commands"], [command("d1"), command("d2", later),
                                       command("d3", template="missing")])
    ledger = tmp_path / "ledger.sqlite"

    assert journeys(["deliver", *deliver_args(paths, ledger, "--dry-run")]) == 0

    out = capsys.readouterr().out
    assert "d1 via webhook now: template 'hello'" in out
    assert f"d2 via webhook at {later}" in out
    assert "d3 via webhook: cannot render" in out
    assert out.strip().splitlines()[-1] == (
        "dry run: 1 would be sent now, 1 held until send_at, 1 cannot be rendered, "
        "0 invalid, 0 from a backtest; nothing was sent")
    assert received.keys() == []
    assert not ledger.exists() and not paths["events"].exists() and not paths["dead"].exists()


def test_deliver_is_a_journeys_subcommand_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        journeys(["deliver", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: journeys deliver ")
    for option in ("--commands", "--kafka", "--ledger", "--serve", "--dry-run",
                   "--allow-backtest", "--concurrency", "--worker-id", "--lease"):
        assert option in out


@pytest.mark.parametrize(("extra", "message"), [
    (["--ledger", ""], "--ledger required unless --dry-run"),
    (["--concurrency", "0"], "must be at least 1"),
    (["--commands", "/nonexistent/commands.jsonl"], "no such file (--commands)"),
    (["--templates", "/nonexistent/templates"], "is not a folder (--templates)"),
    (["--ledger", "redis://:notaport"], "not a usable Redis URL"),
    (["--ledger", "redis://127.0.0.1:1/0"], "cannot reach Redis"),
    (["--ledger", "/nonexistent/ledger.sqlite"], "cannot open the SQLite ledger"),
])
def test_mistakes_on_the_command_line_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
        message: str) -> None:
    paths = write_setup(tmp_path, "http://127.0.0.1:9/hook")
    write_commands(paths["commands"], [command("x")])
    args = deliver_args(paths, tmp_path / "l.sqlite") + extra
    try:
        status = journeys(["deliver", *args])
    except SystemExit as exited:
        status = int(exited.code or 0)
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert message in err.splitlines()[-1]  # argparse's usage may come before
