"""A user's mistakes through the real `journeys` command: one line on stderr, exit 2.

Ctrl-C: one line, exit 130. A lost Redis: the engine's own line, no Rust panic report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from tcp_proxy import TcpProxy

from engine.app.generator import ChainConfig, write_jsonl

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "journeys"
VISIT = {"event_id": "e1", "customer_id": "c1", "type": "visit",
         "ts": "2025-03-03T12:00:00+00:00", "venue_id": "v1", "amount": 20}


def journeys(*args: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False, env=env)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def lines_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def one_line(result: subprocess.CompletedProcess[str], status: int, *names: str) -> str:
    """The only line of stderr, after checking the exit status and what it names."""
    assert result.returncode == status, result.stderr
    lines = lines_of(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("journeys: ")
    for name in names:
        assert name in lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(VISIT) + b"\n")
    return path


def run_args(events: Path | str, redis_url: str, prefix: str, *extra: str) -> tuple[str, ...]:
    return ("run", "--journeys", str(EXAMPLES), "--events", str(events), "--redis", redis_url,
            "--prefix", prefix, *extra)


def test_a_missing_events_file(tmp_path: Path) -> None:
    result = journeys("run", "--journeys", str(EXAMPLES), "--events", "nope.jsonl", cwd=tmp_path)
    one_line(result, 2, "nope.jsonl", "--events", "no such file")


def test_a_folder_given_as_the_events_file(tmp_path: Path) -> None:
    result = journeys("run", "--journeys", str(EXAMPLES), "--events", str(tmp_path),
                      cwd=tmp_path)
    one_line(result, 2, str(tmp_path), "is a folder")


@pytest.mark.parametrize(("flag", "path", "said"), [
    ("--commands", "missing/commands.jsonl", "missing is not an existing folder"),
    ("--dead-letter", "missing/dead.jsonl", "missing is not an existing folder"),
    ("--commands", ".", "is a folder"),
])
def test_an_output_that_cannot_be_written(tmp_path: Path, events: Path, flag: str, path: str,
                                          said: str) -> None:
    result = journeys("run", "--journeys", str(EXAMPLES), "--events", str(events), flag, path,
                      cwd=tmp_path)
    one_line(result, 2, path, flag, said)


def test_a_state_dir_that_is_a_file(tmp_path: Path, events: Path) -> None:
    result = journeys("run", "--journeys", str(EXAMPLES), "--events", str(events),
                      "--state-dir", str(events), cwd=tmp_path)
    one_line(result, 2, str(events), "--state-dir")


def test_a_redis_url_that_is_not_one(tmp_path: Path, events: Path) -> None:
    result = journeys(*run_args(events, "notaurl", "x"), cwd=tmp_path)
    one_line(result, 2, "notaurl", "redis://")
    result = journeys("forget", "c1", "--redis", "notaurl", cwd=tmp_path)
    one_line(result, 2, "notaurl")


def test_a_redis_that_never_answered_fails_within_seconds(tmp_path: Path, events: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    began = time.monotonic()
    result = journeys(*run_args(events, url, "x"), cwd=tmp_path, timeout=60)
    assert time.monotonic() - began < 10
    one_line(result, 2, url, "does not answer")


def test_an_unknown_telemetry_mode(tmp_path: Path, events: Path, redis_url: str,
                                   key_prefix: str) -> None:
    env = {**os.environ, "JOURNEYS_TELEMETRY": "bogus"}
    result = journeys(*run_args(events, redis_url, key_prefix), cwd=tmp_path, env=env)
    one_line(result, 2, "JOURNEYS_TELEMETRY: telemetry:", "'none', 'console' or 'otlp'")


def test_a_20_mb_line_makes_a_small_dead_letter(tmp_path: Path, redis_url: str,
                                                key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    huge = orjson.dumps({**VISIT, "event_id": "huge", "pad": "x" * 20_000_000})
    events.write_bytes(huge + b"\n" + orjson.dumps(VISIT) + b"\n")
    dead = tmp_path / "dead.jsonl"
    result = journeys(*run_args(events, redis_url, key_prefix, "--dead-letter", str(dead),
                                "--commands", str(tmp_path / "commands.jsonl")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert dead.stat().st_size < 100_000
    (letter,) = map(orjson.loads, dead.read_bytes().splitlines())
    assert letter["raw_truncated"] is True and letter["raw_length"] == len(huge)


def test_blank_lines_are_counted_in_the_summary(tmp_path: Path, redis_url: str,
                                                key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n" + orjson.dumps(VISIT) + b"\n   \n\n")
    result = journeys(*run_args(events, redis_url, key_prefix, "--dead-letter",
                                str(tmp_path / "dead.jsonl")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 events, 3 blank lines skipped, 0 dead letters" in result.stderr


def test_ctrl_c_stops_a_run_with_one_line_and_the_same_command_resumes_it(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=1, customers=2000, days=200), events)
    commands = tmp_path / "commands.jsonl"
    args = run_args(events, redis_url, key_prefix, "--commands", str(commands),
                    "--dead-letter", str(tmp_path / "dead.jsonl"), "--tail", "--idle-exit", "3")
    engine = subprocess.Popen(command(*args), cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_default)
    _wait_for_output(engine, commands)
    engine.send_signal(signal.SIGINT)
    _, stderr = engine.communicate(timeout=60)
    interrupted = subprocess.CompletedProcess(engine.args, engine.returncode, "", stderr)
    one_line(interrupted, 130, "interrupted", "run the same command again to resume it")
    resumed = journeys(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_a_lost_redis_prints_the_engines_line_and_no_panic(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(ChainConfig(seed=3, customers=1000, days=200), events)
    commands = tmp_path / "commands.jsonl"
    target = urlsplit(redis_url)
    assert target.port is not None
    with TcpProxy(target.port) as proxy:
        url = f"redis://{proxy.address}{target.path}"
        engine = subprocess.Popen(
            command(*run_args(events, url, key_prefix, "--commands", str(commands),
                              "--dead-letter", str(tmp_path / "dead.jsonl"), "--tail",
                              "--idle-exit", "3", "--outage-limit", "60")),
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_for_output(engine, commands)
        proxy.stop()
        time.sleep(1)
        proxy.start()
        _, stderr = engine.communicate(timeout=120)
    assert engine.returncode == 0, stderr
    lost, summary = lines_of(stderr)
    assert lost.startswith("journeys: lost the connection to Redis")
    assert "events/s" in summary


def _ctrl_c_default() -> None:
    """In the child: SIGINT as a terminal's Ctrl-C delivers it, also when the suite runs in
    the background of a shell, which starts its children with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_output(engine: subprocess.Popen[str], commands: Path) -> None:
    deadline = time.monotonic() + 120
    while not commands.exists() or commands.stat().st_size == 0:
        assert engine.poll() is None, engine.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.parametrize(("args", "names"), [
    (("--customers", "many"), ("journeys generate:", "--customers", "'many'")),
    (("--venues", "0"), ("venues must be 1..999",)),
    (("--start", "first of may"), ("first of may",)),
    (("--ts-format", "unix"), ("--ts-format", "'unix'")),
    (("--out", "missing-folder/events.jsonl"), ("missing-folder/events.jsonl",)),
])
def test_generate_mistakes(tmp_path: Path, args: tuple[str, ...], names: tuple[str, ...]
                           ) -> None:
    result = journeys("generate", "--days", "2", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = lines_of(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("journeys")
    for name in names:
        assert name in lines[0]
    assert not (tmp_path / "missing-folder").exists()


def test_a_usage_mistake_is_one_line(tmp_path: Path) -> None:
    result = journeys("run", "--journeys", str(EXAMPLES), "--shards", "eight", cwd=tmp_path)
    assert result.returncode == 2
    assert lines_of(result.stderr) == [
        "journeys run: argument --shards: invalid int value: 'eight' (see journeys run --help)"]


def test_a_misspelt_segment_stops_validate_and_run_with_file_line_col(tmp_path: Path) -> None:
    journey = tmp_path / "typo.yaml"
    journey.write_text("journey: typo\nversion: 1\nentry:\n  event: visit\n"
                       "  when: \"customer.segment == 'regulars'\"\n"
                       "steps:\n  - id: hello\n    actions: [{send: email, template: hello}]\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(VISIT) + b"\n")
    validated = journeys("validate", str(journey), cwd=tmp_path)
    assert validated.returncode == 1
    assert validated.stderr.startswith(f"{journey}:5:30: 'regulars' is not a segment; "
                                       "did you mean 'regular'?")
    ran = journeys("run", "--journeys", str(journey), "--events", str(events),
                   "--commands", str(tmp_path / "c.jsonl"), cwd=tmp_path)
    assert ran.returncode == 1
    assert lines_of(ran.stderr)[0].startswith(f"{journey}:5:30: 'regulars' is not a segment")
    own = tmp_path / "segments.yaml"
    own.write_text("activity:\n  - id: regulars\n")
    assert journeys("validate", "--segments", str(own), str(journey),
                    cwd=tmp_path).returncode == 0
