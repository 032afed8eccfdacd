"""The console's access token: a sign-in form sets a cookie; scripts send a bearer header.

A browser signs in once at /login with the token; the console answers with an HttpOnly,
SameSite=Strict cookie holding a keyed digest of the token (not the token itself). Every
other request needs that cookie or `Authorization: Bearer <token>`; without either it gets
401 and the sign-in form.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

COOKIE = "journeys_console"
OPEN_PATHS = frozenset({"/login", "/static/console.css"})
"""Paths served without the token: the sign-in form and its style sheet."""


class TokenCheck:
    """Tells whether a request carries the console's token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.cookie_value = hmac.new(self._token, b"journeys console session",
                                     hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def allowed(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and self.token_matches(header[7:].strip()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, self.cookie_value)
