"""`journeys ingest` as a real process on a free loopback port, for the tests and the load
test: a sources file with one API-key source and one signed source, and the server started
on it and stopped (or killed) at the end."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.tansu import free_port

__all__ = ["IngestProcess", "Sources", "ingest_process", "write_sources"]

ROOT = Path(__file__).resolve().parents[1]
KEY_SOURCE = "pos"
SIGNED_SOURCE = "bookings"
_START_POLL_S = 0.05


@dataclass(frozen=True)
class Sources:
    """A sources file and the secrets its environment variables hold."""

    path: Path
    api_key: str
    hmac_secret: str
    environ: dict[str, str]


def write_sources(folder: Path, tolerance: str = "5m") -> Sources:
    """A sources file in `folder`: `pos` with an API key, `bookings` with an HMAC secret."""
    api_key, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    path = folder / "sources.yaml"
    path.write_text(
        "sources:\n"
        f"  - name: {KEY_SOURCE}\n"
        "    api_keys_env: [INGEST_POS_KEY]\n"
        f"  - name: {SIGNED_SOURCE}\n"
        "    hmac:\n"
        "      secret_env: INGEST_BOOKINGS_SECRET\n"
        f"      tolerance: {tolerance}\n", encoding="utf-8")
    return Sources(path, api_key, secret, {"INGEST_POS_KEY": api_key,
                                           "INGEST_BOOKINGS_SECRET": secret})


@dataclass
class IngestProcess:
    """A running ingest server."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@contextmanager
def ingest_process(sources: Sources, redis_url: str, prefix: str, sink: Sequence[str],
                   log: Path, timeout_s: float = 30.0) -> Iterator[IngestProcess]:
    """Start `journeys ingest` with `sink` options (`--events-out FILE` or `--kafka ...`),
    wait until /health answers, stop it with SIGTERM at the end."""
    port = free_port()
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "ingest", "--config", str(sources.path),
             "--redis", redis_url, "--prefix", prefix, "--port", str(port), *sink],
            cwd=ROOT, env={**os.environ, **sources.environ}, stdout=log_file,
            stderr=subprocess.STDOUT)
    server = IngestProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_healthy(server, timeout_s)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(server: IngestProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"journeys ingest exited with {server.process.returncode}: "
                               f"{server.log.read_text(errors='replace').strip()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(_START_POLL_S)
    raise RuntimeError(f"journeys ingest did not answer /health within {timeout_s:.0f}s")
