"""A NATS server that stops answering cannot hold a batch of commands for ever.

The client lets 4,000 messages wait for their acknowledgements; a publish past them waits
for a free slot. With the server stopped (SIGSTOP), a batch of 4,001 commands must still
end: sent again, then the run stops with the batch in the outbox.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.tansu import free_port
from connectors import nats_sinks
from connectors.nats_client import connect, ensure_stream

NATS_SERVER = shutil.which("nats-server")
pytestmark = pytest.mark.skipif(NATS_SERVER is None, reason="needs the nats-server binary")


class Stopped(Exception):
    """What the sink's stop_process raises here instead of ending the test process."""


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    server = subprocess.Popen([str(NATS_SERVER), "-js", "-a", "127.0.0.1", "-p", str(port),
                               "-sd", str(tmp_path / "store")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield f"nats://127.0.0.1:{port}", server
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait(10)


def test_a_stalled_server_ends_a_batch_larger_than_the_in_flight_limit(
        own_server: tuple[str, subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, server = own_server
    subject = f"stall.{uuid.uuid4().hex[:8]}"
    ensure_stream(connect(url), f"STALL_{uuid.uuid4().hex[:8].upper()}", [subject])
    publisher = nats_sinks._Publisher(url, subject)
    monkeypatch.setattr(nats_sinks, "ACK_TIMEOUT_S", 1.0)
    monkeypatch.setattr(nats_sinks, "ATTEMPTS", 2)
    monkeypatch.setattr(nats_sinks, "RETRY_S", 0.1)

    def stop(reason: str) -> None:
        raise Stopped(reason)

    monkeypatch.setattr(nats_sinks, "stop_process", stop)
    messages = [(f"command {n}".encode(), {"Nats-Msg-Id": f"c{n}"}) for n in range(4_001)]
    outcome: list[BaseException | None] = []

    def publish() -> None:
        try:
            publisher.publish(messages)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    server.send_signal(signal.SIGSTOP)
    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "publishing to a stalled server never ended"
    assert len(outcome) == 1 and isinstance(outcome[0], Stopped), outcome
    assert "4001 messages" in str(outcome[0])
