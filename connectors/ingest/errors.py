"""Errors of `journeys ingest`: a config it cannot use, a sink it cannot open."""

from __future__ import annotations

from engine.errors import JourneysError

__all__ = ["IngestConfigError", "IngestError"]


class IngestError(JourneysError):
    """A setting or a resource the ingest service cannot work with; the message says which."""

    code = "ingest"


class IngestConfigError(IngestError):
    """A sources file that cannot be used, at its FILE:LINE:COL and key."""

    code = "ingest_config"

    def __init__(self, file: str, line: int, col: int, setting: str, reason: str) -> None:
        where = f"{file}:{line}:{col}"
        super().__init__(f"{where}: {setting}: {reason}" if setting else f"{where}: {reason}")
        self.line = line
        self.col = col
        self.setting = setting
        self.reason = reason
