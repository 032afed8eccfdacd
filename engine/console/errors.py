"""Errors of the console and of `journeys explain`."""

from __future__ import annotations

from engine.errors import JourneysError


class ConsoleError(JourneysError):
    """A lookup or a setting the console cannot serve: an unknown customer or journey, a
    missing token, a lookup that would read too much. The message says which."""

    code = "console"
