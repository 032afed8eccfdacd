"""A stop request that a signal handler may make.

`threading.Event.set()` takes the event's own lock. A Python signal handler runs in the
main thread between two bytecodes, so when SIGTERM lands while that same thread is inside
`Event.wait()` holding the lock, the handler waits for a lock its own thread holds, and
the process hangs for ever. `StopRequest` takes no lock: `set()` flips a flag and writes a
byte to a pipe, and `wait()` sleeps in `select` on that pipe, so a request made from a
handler (or from another thread) ends the wait at once.
"""

from __future__ import annotations

import contextlib
import os
import select

__all__ = ["StopRequest"]


class StopRequest:
    """A one-way flag: once `set`, it stays set. Close it when done (or use `with`)."""

    def __init__(self) -> None:
        self._set = False
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._read: int | None = read
        self._write: int | None = write

    def set(self) -> None:
        """Ask to stop; safe from a signal handler and from any thread."""
        self._set = True
        write = self._write
        if write is None:
            return
        with contextlib.suppress(OSError):  # the pipe is full (already woken) or closed
            os.write(write, b"\0")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s` seconds or until `set`; whether it is set."""
        read = self._read
        if self._set or read is None:
            return self._set
        select.select([read], [], [], max(timeout_s, 0.0))
        return self._set

    def close(self) -> None:
        """Release the pipe; `set` still flips the flag afterwards."""
        read, write = self._read, self._write
        self._read = self._write = None  # before closing: a handler must not write a reused fd
        for fd in (read, write):
            if fd is not None:
                os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> StopRequest:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
