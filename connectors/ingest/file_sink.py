"""Accepted events appended to a JSON Lines file that `journeys run --events FILE --tail`
follows.

Durable before acknowledged: a request's lines are written, flushed and `os.fsync`ed
before `store` returns. Requests that arrive while a write is under way are written
together by the next one, with one fsync for all of them (group commit), so concurrent
clients share the cost of the disk's flush.

One writer: the file is locked (`flock`) for as long as the sink is open, so a second
ingest process on the same file is refused at start. A crash during a write can leave a
partial last line; it was never acknowledged, and the next start cuts it off before
appending (`connectors.appending.open_for_append`). A failed write is cut back the same
way at once, so the lines after it stay whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from connectors.appending import open_for_append, sync_to_disk
from connectors.ingest.batch import Accepted
from connectors.ingest.errors import IngestError
from connectors.ingest.sink import StoreFailed

__all__ = ["FileSink"]


class FileSink:
    """Appends accepted events to one file, fsynced before each acknowledgement."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"file {self.path}"
        self._file = open_for_append(self.path)
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise IngestError(f"{self.path} is being written by another process; one "
                              "ingest process writes a file") from None
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def store(self, events: Sequence[Accepted]) -> None:
        if not events:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((b"".join(event.line + b"\n" for event in events), done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting())
        await asyncio.shield(done)  # a client that goes away does not stop the write

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    await asyncio.to_thread(self._append, b"".join(data for data, _ in group))
                except OSError as exc:
                    failure = StoreFailed(f"cannot write {self.path}: {exc.strerror or exc}")
                    for _, done in group:
                        done.set_exception(failure)
                else:
                    for _, done in group:
                        done.set_result(None)
        finally:
            self._writer = None

    def _append(self, data: bytes) -> None:
        """Write `data` at the end with unbuffered writes and fsync it; on a failure cut
        the file back to where it was, so no byte of a group answered 503 stays behind
        (a buffered writer would keep them and flush them with the next group)."""
        fd = self._file.fileno()
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            sync_to_disk(fd)
        except OSError:
            with contextlib.suppress(OSError):  # left torn, it is cut at the next start
                os.ftruncate(fd, start)
            raise

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer
        self._file.close()
