"""The product's root error, and how errors reach a person: one line on stderr.

Bytewax turns an exception in a dataflow step into a Rust panic, which Rust reports on
stderr before the exception comes back to Python. `rust_panics_hidden` keeps those reports
off stderr so that the engine's own line is the only one a user reads. `interrupts_kept`
makes sure Ctrl-C stops a run even when it lands in a finalizer.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

E = TypeVar("E", bound=BaseException)

_PANIC_HEADER = re.compile(rb"thread '[^'\n]*' panicked at [^\n]*\n")
_PANIC_PAYLOAD = b"Box<dyn Any>\n"
"""What Rust prints as the message of a panic carrying a Python exception."""
_BACKTRACE_NOTE = b"note: run with `RUST_BACKTRACE=1`"
_HEADER_START = b"thread '"
_FORWARD_JOIN_S = 5.0
_unfiltered: list[int] = []
"""The real stderr while `rust_panics_hidden` filters file descriptor 2."""
_INTERRUPT_AGAIN_S = 0.02


class JourneysError(Exception):
    """The root of every error the product raises: a problem a user can act on.

    `str()` is one line: the context first, then what to do. The context names where it
    happened: a file, a customer key, a shard, an input position. `code` names the kind of
    problem for programs that embed the engine (stable across releases; unique per class).
    The command line catches this class alone and prints the one line.
    """

    code: ClassVar[str] = "journeys"
    message: str = ""
    file: str | None = None
    key: str | None = None
    shard: int | None = None
    position: int | None = None

    def __init__(self, message: str, *, file: str | os.PathLike[str] | None = None,
                 key: str | None = None, shard: int | None = None,
                 position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # a subclass may have set its own context before calling this: keep it
        if file is not None:
            self.file = os.fspath(file)
        if key is not None:
            self.key = key
        if shard is not None:
            self.shard = shard
        if position is not None:
            self.position = position

    def context(self) -> str:
        """Where the problem is, e.g. "events.jsonl, shard 3, position 120"; "" if unknown."""
        parts = [] if self.file is None else [self.file]
        if self.key is not None:
            parts.append(f"key {self.key!r}")
        if self.shard is not None:
            parts.append(f"shard {self.shard}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.context()
        return f"{where}: {self.message}" if where else self.message


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its lines joined), or its type's name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def cause_of(exc: BaseException, kinds: tuple[type[E], ...]) -> E | None:
    """The first of `exc` and the exceptions it was raised from (or while handling) that is
    one of `kinds`: a step's error arrives from the dataflow wrapped in a runtime error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kinds):
            return current
        current = current.__cause__ or current.__context__
    return None


class PanicFilter:
    """Passes text through, less Rust's panic reports (header, payload, note, blank line).

    Text is passed on as soon as it cannot be the start of a panic report, so progress
    bars that redraw a line keep drawing.
    """

    def __init__(self) -> None:
        self._held = b""
        self._in_report = False

    def feed(self, data: bytes) -> bytes:
        """The part of `data` (with what was held back before) that may be shown now."""
        text, self._held = self._held + data, b""
        shown = []
        while text:
            end = text.find(b"\n")
            if end < 0:
                shown.append(self._partial(text))
                break
            shown.append(self._line(text[:end + 1]))
            text = text[end + 1:]
        return b"".join(shown)

    def flush(self) -> bytes:
        """Whatever is still held back, at the end of the output."""
        held, self._held = self._held, b""
        return held

    def _line(self, line: bytes) -> bytes:
        if self._in_report:
            if line.startswith(_BACKTRACE_NOTE) or line == _PANIC_PAYLOAD:
                return b""
            self._in_report = False
            if line == b"\n":
                return b""
        header = _PANIC_HEADER.search(line)
        if header is None:
            return line
        self._in_report = True
        return line[:header.start()]

    def _partial(self, text: bytes) -> bytes:
        """Show the start of an unfinished line, holding back what may open a report."""
        cut = 0 if self._in_report else _header_may_start(text)
        self._held = text[cut:]
        return text[:cut]


def _header_may_start(text: bytes) -> int:
    """Where in an unfinished line a panic header may begin; len(text) if nowhere."""
    found = text.find(_HEADER_START)
    if found >= 0:
        return found
    for size in range(min(len(_HEADER_START) - 1, len(text)), 0, -1):
        if text.endswith(_HEADER_START[:size]):
            return len(text) - size
    return len(text)


def _forward(source: int, target: int) -> None:
    """Copy the pipe at `source` to `target` through a `PanicFilter`; close both at its end."""
    panic_filter = PanicFilter()
    try:
        while chunk := os.read(source, 1 << 16):
            _write_all(target, panic_filter.feed(chunk))
        _write_all(target, panic_filter.flush())
    finally:
        os.close(source)
        os.close(target)


def _write_all(fd: int, data: bytes) -> None:
    """Write `data` to `fd`; if stderr is gone, drop it (the pipe must still be drained)."""
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(fd, view):]


def say_before_exit(line: str) -> None:
    """Write one line straight to the real stderr, for a process about to end with
    `os._exit` (which would not wait for the filter of `rust_panics_hidden`)."""
    sys.stderr.flush()
    _write_all(_unfiltered[-1] if _unfiltered else 2, line.encode() + b"\n")


@contextlib.contextmanager
def rust_panics_hidden() -> Iterator[None]:
    """Within the block, stderr (file descriptor 2) shows everything but Rust panic reports.

    Rust is also told to print no backtrace, for a report that would still get through.
    """
    os.environ["RUST_BACKTRACE"] = "0"
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    _unfiltered.append(saved)
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, saved),
                                 name="stderr-filter", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        _restore(saved, forwarder)


def _restore(saved: int, forwarder: threading.Thread) -> None:
    """Point stderr back at `saved`; the pipe's last write end closes, the forwarder ends."""
    sys.stderr.flush()
    os.dup2(saved, 2)
    _unfiltered.remove(saved)
    forwarder.join(_FORWARD_JOIN_S)  # a child process may hold the pipe open


@contextlib.contextmanager
def interrupts_kept() -> Iterator[None]:
    """Within the block, Ctrl-C is never lost.

    Python prints and ignores an exception raised in a finalizer or a garbage-collector
    callback ("Exception ignored in ..."): a KeyboardInterrupt that lands in one, say in a
    Redis pipeline's `__del__`, would leave the run going. It is raised again a moment
    later instead.
    """
    previous = sys.unraisablehook

    def hook(unraisable: UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            again = threading.Timer(_INTERRUPT_AGAIN_S, os.kill, (os.getpid(), signal.SIGINT))
            again.daemon = True
            again.start()
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
