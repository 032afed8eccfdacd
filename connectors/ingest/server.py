"""Serving the ingest application with uvicorn, until SIGINT or SIGTERM.

On a stop signal uvicorn stops accepting connections and lets the requests under way
finish (each is answered only once its events are stored), then the sink is closed.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
import uvicorn

from connectors.ingest.app import create_app
from connectors.ingest.auth import Authenticator
from connectors.ingest.config import IngestConfig
from connectors.ingest.intake import Intake
from connectors.ingest.seen import SeenIds
from connectors.ingest.sink import EventSink

__all__ = ["serve"]


def serve(config: IngestConfig, sink: EventSink, redis_url: str, prefix: str, host: str,
          port: int) -> None:
    """Serve until stopped. uvicorn's access log is off (one line per request would cost
    more than the request); refusals of the sink or Redis are logged as warnings."""
    logging.getLogger("connectors.ingest").setLevel(logging.INFO)
    seen = SeenIds(aioredis.Redis.from_url(redis_url, socket_connect_timeout=5,
                                           socket_timeout=30), prefix)
    app = create_app(Intake(sink, seen), Authenticator(config))
    server_config = uvicorn.Config(app, host=host, port=port, access_log=False,
                                   log_config=None, log_level="warning")
    uvicorn.Server(server_config).run()
