"""The console end to end: the engine runs a small events file into the real Redis, the
console is started as `journeys console` on a loopback port, and headless Chromium signs in
and reads the journey, customer and explain pages; `journeys explain` answers the same."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import redis
from harness import SCENARIO_SKEW_MS, Engine, at, event, visit
from tcp_proxy import TcpProxy

from benchmarks.tansu import free_port
from engine.app.cli import main
from engine.flow.routing import shard_of
from engine.flow.runner import RunOptions, run_on
from engine.run_defaults import SUGGESTED_TIMELINE
from engine.storage.forget import forget_customer
from engine.storage.store import ShardStore, delete_matching
from journeys_dsl.loader import load_journeys

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "console-test-token-5f1c"
SHARDS = 4
START_TIMEOUT_S = 30.0
JOURNEY = """\
journey: thanks
version: 1
name: Five-star thanks
entry:
  event: rating
  when: "event.stars == 5 and customer.visit_count == 1"
steps:
  - id: thank
    actions:
      - send: email
        template: thanks
"""
POLICIES = """\
frequency_cap: {max: 1, per: 7d, when_capped: skip}
quiet_hours: {from: "21:00", to: "09:00"}
"""


def profile(customer: str, email: str) -> dict[str, object]:
    return event("profile", customer, at(0, 9), email=email, timezone="Europe/Paris",
                 name=customer.title())


EVENTS = [
    # ann: first visit, five stars: enters and gets the email at once
    profile("ann", "ann@example.org"), visit("ann", at(0, 12)),
    event("rating", "ann", at(0, 13), stars=5),
    # bob: a second visit before his five stars: the entry condition is false
    profile("bob", "bob@example.org"), visit("bob", at(0, 12)), visit("bob", at(1, 12)),
    event("rating", "bob", at(1, 13), stars=5),
    # cat: rates at 22:30: enters, the email waits for the end of the quiet hours
    profile("cat", "cat@example.org"), visit("cat", at(0, 20)),
    event("rating", "cat", at(0, 22, 30), stars=5),
]


@dataclass(frozen=True)
class Console:
    url: str
    redis_url: str
    prefix: str
    log: Path
    policies: Path


@pytest.fixture(scope="module")
def console(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    workdir = tmp_path_factory.mktemp("console")
    (workdir / "thanks.yaml").write_text(JOURNEY)
    policies = workdir / "policies.yaml"
    policies.write_text(POLICIES)
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    engine = Engine(workdir, redis_url, prefix, [str(workdir / "thanks.yaml")], shards=SHARDS,
                    policies=str(policies), timeline_kept=SUGGESTED_TIMELINE)
    commands = engine.run(EVENTS, until=at(3, 12))
    assert sorted(c["customer_id"] for c in commands) == ["ann", "cat"]
    port = free_port()
    log = workdir / "console.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "console", "--redis", redis_url, "--prefix",
             prefix, "--shards", str(SHARDS), "--port", str(port), "--policies",
             str(policies)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
            env={**os.environ, "JOURNEYS_CONSOLE_TOKEN": TOKEN})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield Console(url, redis_url, prefix, log, policies)
    finally:
        process.terminate()
        process.wait(10)
        client = redis.Redis.from_url(redis_url)
        delete_matching(client, f"*{prefix}*")
        client.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"journeys console exited with {process.returncode}")
        try:
            urllib.request.urlopen(url + "/login", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"journeys console did not answer within {START_TIMEOUT_S}s")


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_requests_without_the_token_are_refused(console: Console) -> None:
    for path in ("/", "/journeys/thanks", "/customers/ann", "/customers/ann/explain"):
        assert _status(console.url + path) == 401
        assert _status(console.url + path, {"Authorization": "Bearer wrong-token"}) == 401
        assert _status(console.url + path, {"Cookie": "journeys_console=forged"}) == 401
    assert _status(console.url + "/customers/ann",
                   {"Authorization": f"Bearer {TOKEN}"}) == 200


def test_the_browser_signs_in_and_reads_the_journey_customer_and_explain_pages(
        console: Console) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium package is needed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page()
            refused = page.goto(console.url + "/journeys/thanks")
            assert refused is not None and refused.status == 401
            page.fill("#token", "not the token")
            page.click("form.login button")
            assert page.locator("p.error").inner_text() == "That token is not right."
            page.fill("#token", TOKEN)
            page.click("form.login button")
            assert page.locator("h1").inner_text() == "Journeys"

            page.click("text=Five-star thanks")
            row = page.locator("table.steps tbody tr").first
            cells = row.locator("td").all_inner_texts()
            assert cells[:6] == ["thank", "at entry", "2", "0", "0", "email 2"]
            facts = page.locator("dl.facts").inner_text()
            assert "entered\n2" in facts and "messages\n2" in facts
            assert "reached 2" in (page.locator("svg.flow").text_content() or "")

            page.fill("input[name=q]", "cat@example.org")
            page.press("input[name=q]", "Enter")
            assert page.url.endswith("/customers/cat")
            assert "cat@example.org" in page.locator("table.kv").first.inner_text()
            enrollment = page.locator("table.enrollments tbody tr").first.inner_text()
            assert "thanks@1" in enrollment and "completed" in enrollment
            timeline = page.locator("table.timeline").inner_text()
            assert "thanks@1 · thank · email" in timeline and "rating" in timeline
            # the email waited for the end of the quiet hours: sent at 09:00 Paris time
            assert "2025-03-04 09:00" in timeline

            page.goto(console.url + "/customers/bob/explain?journey=thanks")
            section = page.locator("section.explain")
            assert section.locator(".badge").inner_text() == "would not enter"
            failing = section.locator("table.parts tr.fail").inner_text()
            assert "customer.visit_count == 1" in failing
            assert "customer.visit_count = 2" in failing

            page.goto(console.url + "/customers/ann/explain?journey=thanks")
            stops = page.locator("section.explain table.checks tr.fail").all_inner_texts()
            assert len(stops) == 1 and "re-entry" in stops[0]
        finally:
            browser.close()
    log = console.log.read_text()
    assert "GET /customers/{customer_id}/explain 200" in log
    for personal in ("ann", "bob", "cat@example.org", "example.org"):
        assert personal not in log, f"{personal!r} appears in the console's log"


def test_journeys_explain_answers_in_the_terminal(console: Console) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["explain", "bob@example.org", "--journey", "thanks", "--redis",
                       console.redis_url, "--prefix", console.prefix,
                       "--policies", str(console.policies)])
    assert status == 0, err.getvalue()
    text = out.getvalue()
    assert "Five-star thanks (thanks@1): would not enter" in text
    assert "false  customer.visit_count == 1" in text
    assert "customer.visit_count = 2" in text

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        missing = main(["explain", "nobody", "--redis", console.redis_url,
                        "--prefix", console.prefix])
    assert missing == 2
    assert err.getvalue().strip().splitlines()[-1] == (
        f"journeys: no customer with id, email or phone 'nobody' under prefix "
        f"'{console.prefix}'")


def test_timelines_are_capped_and_erased_with_the_customer(console: Console) -> None:
    client = redis.Redis.from_url(console.redis_url)
    try:
        store = ShardStore(client, console.prefix, shard_of("ann", SHARDS))
        key = store.timeline_key("ann")
        assert 0 < client.llen(key) <= SUGGESTED_TIMELINE
        forget_customer(client, console.prefix, "ann", SHARDS)
        assert not client.exists(key)
    finally:
        client.close()


def test_mistakes_on_the_command_line_get_one_line(console: Console) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, text=True,
                              capture_output=True, timeout=60, check=False,
                              env={**os.environ, "JOURNEYS_CONSOLE_TOKEN": TOKEN})

    state = ("--redis", console.redis_url, "--prefix", console.prefix)
    port = console.url.rsplit(":", 1)[1]
    cases = [
        (("explain", "bob", *state, "--journey", "nope"), "no journey 'nope' in the engine"),
        (("explain", "bob", *state, "--at", "yesterday"), "--at 'yesterday'"),
        (("explain", "bob"), "give --redis URL"),
        (("console", *state, "--port", port), f"cannot listen on 127.0.0.1:{port}"),
        (("console", *state, "--token", "short"), "token is too short"),
    ]
    for args, said in cases:
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and said in lines[0], (args, result.stderr)
    # a malformed option: one line too
    result = run("console", *state, "--port", "99999")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "argument --port: give a port from 1 to 65535, not 99999" in lines[0]


def test_no_timeline_is_written_by_default(redis_url: str, key_prefix: str,
                                                      tmp_path: Path) -> None:
    (tmp_path / "thanks.yaml").write_text(JOURNEY)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    options = RunOptions(journeys=[str(tmp_path / "thanks.yaml")], events=str(events),
                         commands=str(tmp_path / "commands.jsonl"),
                         dead_letter=str(tmp_path / "dead.jsonl"), shards=SHARDS,
                         prefix=key_prefix, until_ms=None, max_skew_ms=SCENARIO_SKEW_MS)
    summary = run_on(redis_url, options, load_journeys(options.journeys))
    assert summary.events_read == len(EVENTS) and summary.commands == 2
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(ShardStore(client, key_prefix, shard_of("ann", SHARDS))
                             .customer_key("ann"))
        assert not list(client.scan_iter(match=f"{{{key_prefix}:s*}}:t:*"))
    finally:
        client.close()


def test_a_lost_redis_gives_a_503_page_and_the_console_recovers(console: Console) -> None:
    redis_port = int(urlsplit(console.redis_url).port or 6379)
    database = urlsplit(console.redis_url).path or "/0"
    with TcpProxy(redis_port) as proxy:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "console", "--redis",
             f"redis://{proxy.address}{database}", "--prefix", console.prefix,
             "--shards", str(SHARDS), "--port", str(port)], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "JOURNEYS_CONSOLE_TOKEN": TOKEN})
        url = f"http://127.0.0.1:{port}"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        try:
            _wait_until_up(url, process)
            assert _status(url + "/customers/bob", bearer) == 200
            proxy.stop()
            assert _status(url + "/customers/bob", bearer) == 503
            proxy.start()
            assert _status(url + "/customers/bob", bearer) == 200
        finally:
            process.terminate()
            process.wait(10)
