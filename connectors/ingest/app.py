"""The ingest web application: `POST /events` and `GET /health`.

Answers of `POST /events` (a JSON body each, see `Receipt.as_json`):
- 200: every event is stored now or was before (`stored`, `duplicates`);
- 422: some events were refused, each with its index and the engine's reason; the others
  are stored (listed as on 200);
- 400 an unreadable body, 401 no or wrong credentials, 413 a body over the limit;
- 503 nothing can be promised (the sink or Redis failed): send the same request again.
No answer but 200 and 422 says that anything was stored; a 200 or 422 is only sent once the
sink confirmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.ingest.auth import Authenticator, Refusal
from connectors.ingest.batch import MAX_BODY_BYTES, BodyError, read_body
from connectors.ingest.intake import Intake, Unavailable

__all__ = ["RETRY_AFTER_S", "create_app"]

RETRY_AFTER_S = 1
log = logging.getLogger(__name__)


def create_app(intake: Intake, authenticator: Authenticator,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The application; `clock` gives the time signed requests are checked against."""

    async def events(request: Request) -> JSONResponse:
        body = await _read_limited(request)
        if body is None:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes; send smaller "
                               "batches")
        source = authenticator.identify(request.headers, body, clock())
        if isinstance(source, Refusal):
            return _error(401, source.reason, {"WWW-Authenticate": "Bearer"})
        try:
            values = read_body(body, request.headers.get("content-type", ""))
        except BodyError as exc:
            return _error(400, str(exc))
        try:
            receipt = await intake.receive(source, values)
        except Unavailable as exc:
            log.warning("source %r: answered 503: %s", source, exc)
            return _error(503, f"not stored, send again: {exc}",
                          {"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse(receipt.as_json(), status_code=422 if receipt.refused else 200)

    async def health(_request: Request) -> JSONResponse:
        try:
            redis_ok = await intake.seen.ping()
        except (redis.RedisError, OSError) as exc:
            return _error(503, f"Redis does not answer: {exc}")
        if not redis_ok:
            return _error(503, "Redis does not answer")
        return JSONResponse({"status": "ok", "sink": intake.sink.description})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await intake.sink.close()
            await intake.seen.close()

    return Starlette(routes=[Route("/events", events, methods=["POST"]),
                             Route("/health", health, methods=["GET"])],
                     lifespan=lifespan)


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None when it is over `MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": reason}
    return JSONResponse(body, status_code=status, headers=headers)
