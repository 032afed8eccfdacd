"""A JSON POST over urllib with a timeout, redirects off, and errors as values."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message as HeaderMap
from typing import Any

MAX_BODY_BYTES = 1 << 20


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: HeaderMap, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
         *, redact: str | None = None) -> HttpReply:
    """POST `body` to `url`; any HTTP status is a reply, anything else a `TransportError`.

    `redact` is a part of the URL (a token) replaced by `***` in error messages.
    """
    shown = url.replace(redact, "***") if redact else url
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return HttpReply(response.status, response.read(MAX_BODY_BYTES),
                             dict(response.headers.items()))
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read(MAX_BODY_BYTES)
        except OSError:
            data = b""
        finally:
            exc.close()
        return HttpReply(exc.code, data, dict(exc.headers.items()) if exc.headers else {})
    except urllib.error.URLError as exc:
        raise TransportError(shown, _reason(exc.reason, timeout_s, redact)) from None
    except (OSError, ValueError) as exc:
        raise TransportError(shown, _reason(exc, timeout_s, redact)) from None


def _reason(reason: object, timeout_s: float, redact: str | None) -> str:
    if isinstance(reason, TimeoutError):
        return f"no response within {timeout_s:g}s"
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
