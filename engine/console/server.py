"""Serving the console with uvicorn, with a request log free of personal data."""

from __future__ import annotations

import logging
import socket

import uvicorn

from engine.console.app import create_app
from engine.console.errors import ConsoleError
from engine.console.live import EngineModels, LiveEngine
from engine.storage.redis_client import connect


def serve(redis_url: str, prefix: str, shards: int, models: EngineModels, token: str,
          host: str, port: int) -> None:
    """Serve the console until interrupted. uvicorn's own access log is off (it would write
    customer ids from paths); the console logs each request by its route instead."""
    engine = LiveEngine(connect(redis_url, socket_connect_timeout=5, socket_timeout=30),
                        prefix, shards, models)
    logging.getLogger("engine.console").setLevel(logging.INFO)
    config = uvicorn.Config(create_app(engine, token), host=host, port=port, access_log=False,
                            log_config=None, log_level="warning")
    uvicorn.Server(config).run()


def check_free(host: str, port: int) -> None:
    """Refuse an address the console cannot listen on, before anything starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise ConsoleError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
