"""NATS JetStream for the dataflow's synchronous partitions: one asyncio event loop in a
background thread per process runs every connection's coroutines; `call` waits for one.

Also the setup a run does before it starts: connect (a server that does not answer is one
clear error), and find or create the streams that hold the run's subjects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from engine.errors import JourneysError

__all__ = ["CONNECT_TIMEOUT_S", "DUPLICATE_WINDOW_S", "NatsConnectorError", "call",
           "check_subject", "close", "connect", "ensure_stream", "start"]

CONNECT_TIMEOUT_S = 3.0
"""How long a NATS server may take to answer at start; one that does not was never there."""
REQUEST_TIMEOUT_S = 10.0
"""The longest a call to the server (a publish acknowledgement, a stream look-up) waits."""
DUPLICATE_WINDOW_S = 900.0
"""The duplicate window of a stream the engine creates: a message published again with the
same Nats-Msg-Id within it is dropped by the server. Longer than JetStream's two-minute
default, so that a batch the sink sends again after its acknowledgements timed out (up to
ten sends of 30 s) is still recognised."""

T = TypeVar("T")
log = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


class NatsConnectorError(JourneysError):
    """NATS could not be reached or used as configured."""

    code = "nats"


def _event_loop() -> asyncio.AbstractEventLoop:
    """The process's NATS event loop, started in a daemon thread on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="nats-loop", daemon=True).start()
            _loop = loop
        return _loop


def call(coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
    """Run `coroutine` on the NATS event loop and return its result (or raise its error)."""
    return asyncio.run_coroutine_threadsafe(coroutine, _event_loop()).result(timeout_s)


def start(coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run `coroutine` on the NATS event loop in the background."""
    return asyncio.run_coroutine_threadsafe(coroutine, _event_loop())


def connect(url: str) -> Client:
    """A connection to the NATS server at `url` (it reconnects by itself if the server goes
    away later); NatsConnectorError if it does not answer now."""

    errors: list[Exception] = []

    async def note(exc: Exception) -> None:
        errors.append(exc)

    async def opened() -> Client:
        # one attempt alone tells an absent server at once (the client's own retries
        # would go on); the connection kept then reconnects without end while the server
        # is away
        probe = await nats.connect(url, connect_timeout=CONNECT_TIMEOUT_S,
                                   allow_reconnect=False, max_reconnect_attempts=1,
                                   reconnect_time_wait=0.0, error_cb=note)
        await probe.close()
        return await asyncio.wait_for(nats.connect(
            url, connect_timeout=CONNECT_TIMEOUT_S, max_reconnect_attempts=-1,
            reconnect_time_wait=0.5, error_cb=_report, disconnected_cb=_disconnected),
            CONNECT_TIMEOUT_S * 2)

    try:
        return call(opened())
    except Exception as exc:
        reason = _reason(errors[-1] if errors else exc)
        raise NatsConnectorError(f"NATS at {url} does not answer ({reason}): start it, "
                                 "or give the right URL with --nats") from None


async def _report(exc: Exception) -> None:
    log.warning("NATS: %s", _reason(exc))


async def _disconnected() -> None:
    log.warning("NATS: disconnected; reconnecting")


def close(client: Client) -> None:
    """Close `client`, sending what it still buffers."""
    try:
        call(client.close(), REQUEST_TIMEOUT_S)
    except Exception as exc:  # closing: nothing is left to deliver on this connection
        log.warning("closing the NATS connection: %s", _reason(exc))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


def check_subject(subject: str, flag: str) -> None:
    """Refuse a subject JetStream cannot publish or read in order (wildcards, spaces)."""
    if not subject or any(c in subject for c in " \t\r\n*>") or subject.startswith(".") \
            or subject.endswith(".") or ".." in subject:
        raise NatsConnectorError(f"{subject!r} is not a plain NATS subject ({flag}): give "
                                 "dot-separated tokens without wildcards, e.g. journeys.events")


async def _ensure_stream(js: JetStreamContext, name: str, subjects: Sequence[str]) -> str:
    found: dict[str, str] = {}
    for subject in subjects:
        with contextlib.suppress(NotFoundError):
            found[subject] = await js.find_stream_name_by_subject(subject)
    missing = [s for s in subjects if s not in found]
    if not missing:
        return found[subjects[0]]
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=name, subjects=list(missing),
                                         duplicate_window=DUPLICATE_WINDOW_S))
        return found.get(subjects[0], name)
    kept = list(info.config.subjects or [])
    await js.update_stream(info.config.evolve(subjects=kept + missing))
    return found.get(subjects[0], name)


def ensure_stream(client: Client, name: str, subjects: Sequence[str]) -> str:
    """The stream holding `subjects[0]`, after making sure every subject is in one: a
    subject no stream holds is added to stream `name`, created if missing (duplicate
    window `DUPLICATE_WINDOW_S`)."""
    try:
        return call(_ensure_stream(client.jetstream(timeout=REQUEST_TIMEOUT_S), name,
                                   subjects), REQUEST_TIMEOUT_S * 3)
    except NatsConnectorError:
        raise
    except Exception as exc:
        raise NatsConnectorError(
            f"cannot set up JetStream stream {name!r} for {', '.join(subjects)} "
            f"({_reason(exc)}): is JetStream enabled on the server?") from None
