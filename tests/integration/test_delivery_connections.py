"""The keep-alive connections HTTP channels share, against real servers on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from loopback_http import serving

from connectors.delivery.channels.http import TransportError, post


@dataclass
class Server:
    url: str = ""
    requests: int = 0
    connections: set[int] = field(default_factory=set)
    close_silently: bool = False
    """Close each connection after its response without saying so (an idle timeout)."""
    delay_s: float = 0.0
    body: bytes = b"{}"


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests += 1
            state.connections.add(self.client_address[1])
            if state.delay_s:
                time.sleep(state.delay_s)
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up
                return
            if state.close_silently:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

    with serving(Handler) as base:
        state.url = base + "/hook?x=1"
        yield state


def test_sequential_posts_reuse_one_connection(server: Server) -> None:
    replies = [post(server.url, b"{}", {}, 5.0) for _ in range(20)]
    assert {reply.status for reply in replies} == {200}
    assert server.requests == 20 and len(server.connections) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_once(server: Server) -> None:
    server.close_silently = True
    for _ in range(5):
        assert post(server.url, b"{}", {}, 5.0).status == 200
        time.sleep(0.05)  # the server's close reaches the idle connection
    assert server.requests == 5  # nothing was sent twice
    assert len(server.connections) == 5


def test_a_body_longer_than_kept_is_cut_and_its_connection_not_reused(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.delivery.channels.http as http

    monkeypatch.setattr(http, "MAX_BODY_BYTES", 10)
    server.body = b"x" * 100
    assert post(server.url, b"{}", {}, 5.0).body == b"x" * 10
    assert post(server.url, b"{}", {}, 5.0).status == 200
    assert len(server.connections) == 2


def test_no_response_in_time_is_a_transport_error(server: Server) -> None:
    server.delay_s = 1.0
    with pytest.raises(TransportError, match=r"no response within 0\.2s"):
        post(server.url, b"{}", {}, 0.2)


def test_refused_and_malformed_addresses_are_transport_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match="refused"):
        post(f"http://127.0.0.1:{port}/", b"{}", {}, 2.0)
    with pytest.raises(TransportError, match="port is not a number"):
        post("http://127.0.0.1:port/", b"{}", {}, 2.0)
    with pytest.raises(TransportError, match="not a usable"):
        post("ftp://example.com/", b"{}", {}, 2.0)
    with pytest.raises(TransportError, match=r"\*\*\*"):
        post(f"http://127.0.0.1:{port}/botSECRET/x", b"{}", {}, 2.0, redact="SECRET")
