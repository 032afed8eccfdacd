"""Clients of a real `journeys ingest` process for the tests: signed and keyed posts, and a
stream of posts that records what the server acknowledged while it is killed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from benchmarks.ingest_process import Sources
from connectors.ingest.auth import sign

NDJSON = {"Content-Type": "application/x-ndjson"}


def keyed(sources: Sources) -> dict[str, str]:
    """Headers of the API-key source."""
    return {"Authorization": f"Bearer {sources.api_key}"}


def signed_headers(sources: Sources, body: bytes, at: float | None = None) -> dict[str, str]:
    """Headers of the signed source for `body`, signed at `at` (default now)."""
    stamp = str(int(time.time() if at is None else at))
    return {"X-Timestamp": stamp,
            "X-Signature": sign(sources.hmac_secret.encode(), stamp, body)}


def ndjson(events: Sequence[dict[str, object]]) -> bytes:
    return b"\n".join(orjson.dumps(event) for event in events)


def post_all(url: str, sources: Sources, events: Sequence[dict[str, object]],
             batch: int = 100) -> list[httpx.Response]:
    """Post `events` in order, `batch` per request, each answered 200."""
    answers = []
    with httpx.Client(base_url=url, headers={**keyed(sources), **NDJSON}, timeout=60) as client:
        for start in range(0, len(events), batch):
            answer = client.post("/events", content=ndjson(events[start:start + batch]))
            assert answer.status_code == 200, answer.text
            answers.append(answer)
    return answers


@dataclass
class Stream:
    """Clients posting small batches until the server stops answering."""

    url: str
    sources: Sources
    events: Sequence[dict[str, object]]
    clients: int = 4
    batch: int = 5
    acknowledged: set[str] = field(default_factory=set)
    """Event ids the server answered 200 for (stored or duplicates)."""
    sent: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for number in range(self.clients):
            thread = threading.Thread(target=self._send, args=(self.events[number::self.clients],),
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def wait_for(self, count: int, timeout_s: float = 60.0) -> None:
        """Return once at least `count` events were acknowledged."""
        deadline = time.monotonic() + timeout_s
        while len(self.acknowledged) < count:
            assert time.monotonic() < deadline, f"only {len(self.acknowledged)} acknowledged"
            time.sleep(0.01)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)

    def _send(self, events: Sequence[dict[str, object]]) -> None:
        with httpx.Client(base_url=self.url, headers={**keyed(self.sources), **NDJSON},
                          timeout=30) as client:
            for start in range(0, len(events), self.batch):
                chunk = events[start:start + self.batch]
                ids = {str(event["event_id"]) for event in chunk}
                with self.lock:
                    self.sent |= ids
                try:
                    answer = client.post("/events", content=ndjson(chunk))
                except httpx.TransportError:
                    return  # the server is gone
                if answer.status_code != 200:
                    return
                with self.lock:
                    self.acknowledged |= ids
