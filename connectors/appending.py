"""Files that lines are appended to, repaired when a crash left half a line at the end.

A process killed inside `write()` can leave a partial last line. Appending after it would
glue the next line onto the fragment, and a reader could parse neither. Every appending
sink therefore opens its file through `open_for_append`, which cuts the file back to its
last complete line first.

What the cut loses: only bytes of a line whose write never completed. For the commands
file such a line was never acknowledged, so it is still in the outbox and is written again
whole; a delivery's message events and dead letters are written before the ledger records
the attempt as done, so the same holds for them.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_SCAN_BYTES = 1 << 16


def torn_tail_length(file: BinaryIO) -> int:
    """How many bytes after the file's last newline (0 when it ends with one or is empty)."""
    end = file.seek(0, os.SEEK_END)
    position = end
    while position > 0:
        start = max(0, position - _SCAN_BYTES)
        file.seek(start)
        chunk = file.read(position - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return end - (start + newline + 1)
        position = start
    return end


def repair_torn_tail(path: str | Path) -> int:
    """Cut `path` back to its last complete line; the number of bytes removed.

    A missing file is left missing (0). The cut is fsynced before returning.
    """
    try:
        file = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return 0
    with file:
        torn = torn_tail_length(file)
        if torn:
            size = file.seek(0, os.SEEK_END)
            file.truncate(size - torn)
            file.flush()
            sync_to_disk(file.fileno())
            log.warning("%s ended in a partial line of %d bytes (a crash during a write); "
                        "cut it off before appending", path, torn)
    return torn


def sync_to_disk(fd: int) -> None:
    """`os.fsync` the file: its lines are on disk when this returns. A pipe or a device
    (/dev/null, a FIFO) holds nothing to sync and refuses with EINVAL: nothing to do then.
    Every other failure, and any on a regular file, is raised."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL or stat.S_ISREG(os.fstat(fd).st_mode):
            raise


def open_for_append(path: str | Path) -> BinaryIO:
    """`path` opened for appending bytes, after `repair_torn_tail`."""
    repair_torn_tail(path)
    return open(path, "ab")
