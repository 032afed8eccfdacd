"""A JSON POST over the process's pool of keep-alive connections, redirects off, errors as
values.

Every HTTP channel of a process shares `connections.CONNECTIONS`, so concurrent sends
reuse connections instead of opening one per message.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.delivery.channels.connections import CONNECTIONS
from engine.errors import JourneysError

MAX_BODY_BYTES = 1 << 20
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
         ConnectionAbortedError)
"""Errors of a kept connection the server closed while it was idle: sent again once, on a
new connection."""


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


class TransportError(JourneysError, OSError):
    """No HTTP response came back: refused, reset, timed out or an invalid URL."""

    code = "http_transport"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"POST {url}: {reason}")
        self.url = url
        self.reason = reason


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
         *, redact: str | None = None) -> HttpReply:
    """POST `body` to `url`; any HTTP status is a reply, anything else a `TransportError`.

    `redact` is a part of the URL (a token) replaced by `***` in error messages.
    """
    shown = url.replace(redact, "***") if redact else url
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise TransportError(shown, "the URL's port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(shown, "not a usable http:// or https:// URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {"Content-Type": "application/json", **headers}
    port = port or (443 if parts.scheme == "https" else 80)
    for _attempt in range(2):
        connection, reused = CONNECTIONS.take(parts.scheme, parts.hostname, port, timeout_s)
        try:
            connection.request("POST", target, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read(MAX_BODY_BYTES)
        except STALE as exc:
            CONNECTIONS.discard(connection)
            if reused:
                continue
            raise TransportError(shown, _reason(exc, redact)) from None
        except TimeoutError:
            CONNECTIONS.discard(connection)
            raise TransportError(shown, f"no response within {timeout_s:g}s") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            CONNECTIONS.discard(connection)
            raise TransportError(shown, _reason(exc, redact)) from None
        if response.will_close or not response.isclosed():  # closing, or body left unread
            CONNECTIONS.discard(connection)
        else:
            CONNECTIONS.give(connection)
        return HttpReply(response.status, data, dict(response.getheaders()))
    raise TransportError(shown, "the server closed the connection")


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
