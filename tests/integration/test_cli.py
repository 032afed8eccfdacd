"""The `journeys` command as a user runs it: separate processes, embedded or given Redis."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.app.generator import ChainConfig, write_jsonl

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "journeys"


def journeys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def chain_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chain") / "events.jsonl"
    write_jsonl(ChainConfig(seed=11, customers=400, days=180), path)
    return path


def test_validate_examples_exits_zero(tmp_path: Path) -> None:
    result = journeys("validate", str(EXAMPLES), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok: 11 journeys in 11 files" in result.stdout


def test_event_types_reach_validate_and_run(tmp_path: Path, redis_url: str,
                                            key_prefix: str) -> None:
    types = str(ROOT / "examples" / "event_types.yaml")
    journey = tmp_path / "booked.yaml"
    journey.write_text("journey: booked\nversion: 1\nentry:\n  event: table_booked\n"
                       "  when: \"event.area == 'terrace'\"\nsteps:\n  - id: hi\n"
                       "    actions:\n      - send: push\n        template: hi\n")
    refused = journeys("validate", str(journey), cwd=tmp_path)
    assert refused.returncode == 1 and f"{journey}:4:10: unknown event type" in refused.stderr
    ok = journeys("validate", "--event-types", types, str(journey), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event_id": "1", "customer_id": "ann", "type": "table_booked", "ts": '
        '"2025-03-03T12:00:00+01:00", "venue_id": "v1", "area": "terrace", '
        '"booked_for": "2025-03-08T19:30:00+01:00"}\n'
        '{"event_id": "2", "customer_id": "bob", "type": "table_booked", "ts": '
        '"2025-03-03T12:00:00+01:00", "venue_id": "v1", "area": "terrace"}\n'
        '{"event_id": "3", "customer_id": "cat", "type": "presence", "ts": '
        '"2025-03-03T12:00:00+01:00", "venue_id": "v1", "zone": "cloakroom"}\n')
    settings = tmp_path / "run.yaml"
    settings.write_text(f"event_types: {types}\n")
    ran = journeys("run", "--settings", str(settings), "--journeys", str(journey),
                   "--events", str(events), "--commands", str(tmp_path / "out.jsonl"),
                   "--dead-letter", str(tmp_path / "dead.jsonl"), "--redis", redis_url,
                   "--prefix", key_prefix, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert '"customer_id":"ann"' in (tmp_path / "out.jsonl").read_text()
    dead = (tmp_path / "dead.jsonl").read_text()
    assert dead.count("\n") == 1 and "missing 'booked_for'" in dead


def test_validate_reports_file_line_col_and_exits_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("journey: broken\nversion: 1\nentry:\n  event: vist\nsteps:\n"
                      "  - id: a\n    at: day seven\n")
    result = journeys("validate", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"{broken}:4:10:") and "visit" in line for line in lines)
    assert any(line.startswith(f"{broken}:7:9:") for line in lines)


def test_run_on_the_embedded_default_twice_gives_identical_bytes(
        tmp_path: Path, chain_events: Path) -> None:
    outputs = []
    for attempt in ("a", "b"):
        commands = tmp_path / f"{attempt}.jsonl"
        result = journeys("run", "--journeys", str(EXAMPLES), "--events", str(chain_events),
                          "--commands", str(commands), "--dead-letter",
                          str(tmp_path / f"dead-{attempt}.jsonl"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "events/s" in result.stderr
        outputs.append(commands.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") > 300


def test_run_with_a_state_dir_resumes_and_adds_nothing_on_replay(
        tmp_path: Path, chain_events: Path) -> None:
    commands = tmp_path / "commands.jsonl"
    args = ("run", "--journeys", str(EXAMPLES), "--events", str(chain_events), "--commands",
            str(commands), "--dead-letter", str(tmp_path / "dead.jsonl"), "--state-dir",
            str(tmp_path / "state"))
    first = journeys(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    size = commands.stat().st_size
    assert size > 0
    second = journeys(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert commands.stat().st_size == size
    assert " 0 commands" in second.stderr


def test_run_with_redis_url(tmp_path: Path, chain_events: Path, redis_url: str,
                            key_prefix: str) -> None:
    commands = tmp_path / "commands.jsonl"
    result = journeys("run", "--journeys", str(EXAMPLES), "--events", str(chain_events),
                      "--commands", str(commands), "--dead-letter", str(tmp_path / "d.jsonl"),
                      "--redis", redis_url, "--prefix", key_prefix, "--shards", "3",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert commands.read_bytes().count(b"\n") > 300


def test_demo_prints_the_summary_table(tmp_path: Path) -> None:
    result = journeys("demo", "--customers", "300", "--days", "120", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = result.stdout
    for journey in ("impressed_newcomer@1", "lost_regular@1", "birthday@1",
                    "review_request@1", "at_risk_winback@1"):
        assert journey in table
    assert "entered" in table.splitlines()[0] and "95% CI of lift" in table.splitlines()[0]
    assert "holdout customers get no message" in result.stderr
    assert "extra visits answer a message" in result.stderr
    bad = journeys("demo", "--respond", "1.5", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["journeys: --respond must be within 0..1, "
                                               "got 1.5"]


def test_validate_checks_templates(tmp_path: Path) -> None:
    ok = journeys("validate", str(EXAMPLES), "--templates", str(ROOT / "examples/templates"),
                  "--languages", "en,de", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    journey = tmp_path / "hello.yaml"
    journey.write_text("journey: hello\nversion: 1\nentry:\n  event: visit\nsteps:\n"
                       "  - id: hi\n    actions:\n      - send: email\n        template: hi\n")
    (tmp_path / "templates" / "hi").mkdir(parents=True)
    (tmp_path / "templates" / "hi" / "en.subject.txt").write_text("Hi")
    (tmp_path / "templates" / "hi" / "en.txt").write_text("Your table: {{ table_number }}")
    bad = journeys("validate", str(journey), "--templates", str(tmp_path / "templates"),
                   cwd=tmp_path)
    assert bad.returncode == 1
    assert f"{journey}:8:9:" in bad.stderr and "table_number" in bad.stderr


CLUSTER_JOURNEY = """\
journey: cluster
version: 1
entry:
  event: visit
  when: "customer.visit_count == 2"
steps:
  - id: hello
    at: day 1
    actions: [{send: email, template: hello}]
"""


def test_two_processes_give_the_commands_of_one(tmp_path: Path, chain_events: Path,
                                                redis_url: str, key_prefix: str) -> None:
    (tmp_path / "cluster.yaml").write_text(CLUSTER_JOURNEY)

    def run(prefix: str, out: Path, cluster: list[str] | None) -> set[str]:
        base = ["run", "--journeys", str(tmp_path / "cluster.yaml"), "--events",
                str(chain_events), "--commands", str(out), "--dead-letter",
                str(tmp_path / "dead.jsonl"), "--redis", redis_url, "--prefix", prefix]
        if cluster is None:
            result = journeys(*base, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
        else:
            children = [subprocess.Popen([sys.executable, "-m", "engine", *base, "-i", str(i),
                                          "-a", ",".join(cluster)], cwd=tmp_path,
                                         stderr=subprocess.PIPE)
                        for i in range(len(cluster))]
            for child in children:
                _, err = child.communicate(timeout=300)
                assert child.returncode == 0, err.decode()
        return {line.split(b'"command_id":"')[1][:32].decode()
                for line in out.read_bytes().splitlines()}

    one = run(f"{key_prefix}one", tmp_path / "one.jsonl", None)
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    two = run(f"{key_prefix}two", tmp_path / "two.jsonl", [f"127.0.0.1:{p}" for p in ports])
    assert one and one == two


def test_version_prints_the_installed_packages_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    from engine.compiled_core import CORE_FORM

    result = journeys("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"journeys {version('journey-engine')}; "
                                     f"{CORE_FORM.describe()}")


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    result = journeys("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("validate", "schema", "run", "fit", "backtest", "report", "deliver",
                 "forget", "demo", "generate"):
        assert f"\n    {name} " in result.stdout, name


def test_generate_writes_the_same_file_as_the_benchmark_generator(tmp_path: Path) -> None:
    options = ("--customers", "60", "--days", "30", "--venues", "3", "--seed", "5",
               "--ts-format", "ms")
    result = journeys("generate", *options, "--out", "journeys.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "events in" in result.stderr
    module = subprocess.run([sys.executable, "-m", "engine.app.generator", *options, "--out",
                             "module.jsonl"], cwd=tmp_path, text=True, capture_output=True,
                            timeout=120, check=False)
    assert module.returncode == 0, module.stderr
    written = (tmp_path / "journeys.jsonl").read_bytes()
    assert written and written == (tmp_path / "module.jsonl").read_bytes()


def test_generate_to_stdout(tmp_path: Path) -> None:
    result = journeys("generate", "--customers", "5", "--days", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") >= 1
    assert all(line.startswith("{") for line in result.stdout.splitlines())
