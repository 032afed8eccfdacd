"""A webhook receiver on loopback for the delivery tests: records each request's
`Idempotency-Key` and arrival time, answers 200."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import orjson
from loopback_http import serving

SECRET_ENV = "DELIVERY_TEST_SECRET"
SECRET = "delivery-test-secret"


@dataclass
class Received:
    url: str = ""
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    """(Idempotency-Key, time.time()) in arrival order."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        with self.lock:
            return [key for key, _at in self.arrivals]

    def counts(self) -> Counter[str]:
        return Counter(self.keys())

    def wait_for(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.keys()) >= count:
                return True
            time.sleep(0.02)
        return False


@contextmanager
def receiver(delay_s: float = 0.0) -> Iterator[Received]:
    """An HTTP server on a free loopback port for the test's duration; each request is
    recorded on arrival and answered `delay_s` later (a slow provider keeps sends in
    flight)."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            with received.lock:
                received.arrivals.append((self.headers.get("Idempotency-Key", ""),
                                          time.time()))
            if delay_s:
                time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return None

    with serving(Handler) as base:
        received.url = base + "/hook"
        yield received


def write_setup(folder: Path, url: str, rate: str = "") -> dict[str, Path]:
    """Templates, a webhook config (with an optional `rate_per_second: ..` fragment) and
    the output paths under `folder`."""
    template = folder / "templates" / "hello"
    template.mkdir(parents=True, exist_ok=True)
    (template / "en.txt").write_text("Hello {{ first_name }}", encoding="utf-8")
    config = folder / "delivery.yaml"
    extra = f", {rate}" if rate else ""
    config.write_text(f"channels:\n  webhook: {{url: \"{url}\", secret_env: {SECRET_ENV}"
                      f"{extra}}}\n", encoding="utf-8")
    return {"config": config, "templates": folder / "templates",
            "events": folder / "events.jsonl", "dead": folder / "dead.jsonl",
            "commands": folder / "commands.jsonl"}


def command(command_id: str, send_at: str = "2025-03-03T10:00:00.000Z",
            **extra: Any) -> dict[str, Any]:
    return {"command_id": command_id, "customer_id": f"c-{command_id}", "journey": "j",
            "channel": "webhook", "template": "hello", "language": "en", "to": None,
            "vars": {"first_name": "Ada"}, "send_at": send_at, **extra}


def write_commands(path: Path, commands: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in commands))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
