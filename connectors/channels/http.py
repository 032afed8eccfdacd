"""A JSON POST over a shared pool of keep-alive connections (httpx), redirects off, errors
as values.

One `httpx.Client` serves every HTTP channel of the process: it is safe to share between
threads and keeps up to `POOL_CONNECTIONS` connections open per host, so concurrent sends
reuse connections instead of opening one per message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

MAX_BODY_BYTES = 1 << 20
POOL_CONNECTIONS = 128
"""Connections kept per process; above the delivery worker's default concurrency (64)."""


@dataclass(frozen=True)
class HttpReply:
    """An HTTP response: status, body and headers; `json()` decodes the body."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


class TransportError(OSError):
    """No HTTP response came back: refused, reset, timed out or an invalid URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"POST {url}: {reason}")
        self.url = url
        self.reason = reason


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """The process's pooled client, created on first use."""
    global _client
    with _client_lock:
        if _client is None:
            limits = httpx.Limits(max_connections=POOL_CONNECTIONS,
                                  max_keepalive_connections=POOL_CONNECTIONS)
            _client = httpx.Client(limits=limits, follow_redirects=False, trust_env=False)
        return _client


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
         *, redact: str | None = None) -> HttpReply:
    """POST `body` to `url`; any HTTP status is a reply, anything else a `TransportError`.

    `redact` is a part of the URL (a token) replaced by `***` in error messages.
    """
    shown = url.replace(redact, "***") if redact else url
    try:
        response = shared_client().post(
            url, content=body, timeout=timeout_s,
            headers={"Content-Type": "application/json", **headers})
    except httpx.TimeoutException:
        raise TransportError(shown, f"no response within {timeout_s:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        raise TransportError(shown, _reason(exc, redact)) from None
    return HttpReply(response.status_code, response.content[:MAX_BODY_BYTES],
                     dict(response.headers.items()))


def _reason(reason: object, redact: str | None) -> str:
    text = str(reason) or type(reason).__name__
    return text.replace(redact, "***") if redact else text


def retry_after(headers: Mapping[str, str], cap_s: float) -> float | None:
    """The `Retry-After` header in seconds, capped at `cap_s`; None when absent or a date."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return min(max(float(value), 0.0), cap_s)
            except ValueError:
                return None
    return None


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
