"""Who posted a request: an API key or an HMAC signature names its source.

API keys travel as `Authorization: Bearer <key>`. A signed request carries two headers
(names per source, `X-Signature` and `X-Timestamp` by default): the time in Unix seconds,
and the hex HMAC-SHA256, under the source's secret, of `<timestamp>.` followed by the raw
body (`sha256=<hex>` is accepted too). The timestamp is inside the signed bytes, so a
captured request cannot be replayed with a fresh time; one older or newer than the
source's tolerance is refused. A replay inside the tolerance stores nothing twice: its
event ids are already seen.

Every secret is compared in constant time: API keys through their SHA-256 digests (so
neither their content nor their length leaks), signatures with `hmac.compare_digest`. The
clock is an argument, so tests and replays choose the time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.ingest.config import HmacSettings, IngestConfig

__all__ = ["Authenticator", "Refusal", "sign"]


@dataclass(frozen=True)
class Refusal:
    """Why a request was not let in (answered 401)."""

    reason: str


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex signature a sender puts in the signature header."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Authenticator:
    """Names the source of a request, or says why it is refused."""

    def __init__(self, config: IngestConfig) -> None:
        self._key_digests = [(hashlib.sha256(key).digest(), source.name)
                             for source in config.sources for key in source.api_keys]
        self._signed = [(source.hmac, source.name) for source in config.sources
                        if source.hmac is not None]

    def identify(self, headers: Mapping[str, str], body: bytes,
                 now_s: float) -> str | Refusal:
        """The source's name; `headers` are looked up in lower case."""
        authorization = headers.get("authorization", "")
        if authorization:
            scheme, _, key = authorization.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                return Refusal("the Authorization header must be 'Bearer <key>'")
            return self._by_key(key.strip().encode())
        refusals = []
        for settings, name in self._signed:
            given = headers.get(settings.signature_header.lower())
            if given is None:
                continue
            problem = _check_signature(settings, given, headers, body, now_s)
            if problem is None:
                return name
            refusals.append(problem)
        if refusals:
            return Refusal(refusals[0])
        return Refusal("no credentials: send 'Authorization: Bearer <key>' or a signed "
                       "request")

    def _by_key(self, key: bytes) -> str | Refusal:
        digest = hashlib.sha256(key).digest()
        found: str | None = None
        for known, name in self._key_digests:  # all of them, whichever matches
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found if found is not None else Refusal("unknown API key")


def _check_signature(settings: HmacSettings, given: str, headers: Mapping[str, str],
                     body: bytes, now_s: float) -> str | None:
    """None when the signature and its timestamp hold, else the reason."""
    header = settings.timestamp_header
    stamp = headers.get(header.lower())
    if stamp is None:
        return f"a signed request needs the {header} header (Unix seconds)"
    try:
        sent_s = float(stamp)
    except ValueError:
        return f"{header} must be Unix seconds, not {stamp[:40]!r}"
    if not math.isfinite(sent_s) or abs(now_s - sent_s) > settings.tolerance_s:
        return (f"{header} {stamp[:40]} is more than {settings.tolerance_s}s from the "
                "server's clock: a stale or replayed request")
    expected = sign(settings.secret, stamp, body)
    signature = given.strip().removeprefix("sha256=").lower()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "the signature does not match the body"
    return None
