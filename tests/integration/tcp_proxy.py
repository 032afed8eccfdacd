"""A loopback TCP proxy that can be stopped and started again, to take a server away."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

Watch = Callable[[bytes], None]


class TcpProxy:
    """Forwards connections on 127.0.0.1:`port` to 127.0.0.1:`target_port`, a thread a direction.

    `stop()` closes the listening socket (new connections are refused) and cuts every open
    connection at both ends, as a server that went away; `start()` listens on the same port
    again. `mute()` drops the server's bytes until the next stop: requests still reach it,
    its answers are lost. With `watch`, each connection gets `watch()`, a function handed
    every chunk the client sent, once forwarded.
    """

    def __init__(self, target_port: int, port: int = 0,
                 watch: Callable[[], Watch] | None = None) -> None:
        self.target_port = target_port
        self.port = port
        self.watch = watch
        self.connections = 0
        """Connections accepted so far, over every start."""
        self._lock = threading.Lock()
        self._muted = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._pumps: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again) on the port; the first start picks a free one if `port` is 0."""
        if self._listener is not None:
            raise RuntimeError("the proxy is already running")
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)  # the accept loop sees stop() within this
        self.port = listener.getsockname()[1]
        self._muted.clear()
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        """Stop listening and cut every open connection; return once all are closed."""
        listener, self._listener = self._listener, None
        if listener is None or self._acceptor is None:
            return
        self._acceptor.join()  # it closes the listener once it sees it is no longer current
        with self._lock:
            sockets, self._open = self._open, set()
            pumps, self._pumps = self._pumps, []
        for sock in sockets:
            _shut(sock)  # wakes the pumps blocked in recv
        for pump in pumps:
            pump.join()
        for sock in sockets:
            sock.close()

    def mute(self) -> None:
        """Drop everything the server sends from now until the next `stop()`."""
        self._muted.set()

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            watch = self.watch() if self.watch is not None else None
            pumps = [threading.Thread(target=self._pump, args=(client, server, watch, None),
                                      daemon=True),
                     threading.Thread(target=self._pump, args=(server, client, None, self._muted),
                                      daemon=True)]
            with self._lock:
                self.connections += 1
                self._open.update((client, server))
                self._pumps.extend(pumps)
            for pump in pumps:
                pump.start()
        listener.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, watch: Watch | None,
              muted: threading.Event | None) -> None:
        """Copy bytes from `source` to `target` until either end closes; then cut both."""
        try:
            while data := source.recv(65536):
                if muted is not None and muted.is_set():
                    continue
                target.sendall(data)
                if watch is not None:
                    watch(data)
        except OSError:
            pass
        _shut(source)
        _shut(target)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
