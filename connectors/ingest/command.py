"""`journeys ingest`: its options and what it runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from connectors.ingest.config import load_ingest_config
from connectors.ingest.errors import IngestError
from connectors.ingest.sink import EventSink
from engine.app.cli_parser import port_number

__all__ = ["DEFAULT_PORT", "DESCRIPTION", "add_ingest_parser"]

DEFAULT_PORT = 8360
DESCRIPTION = """\
Accept events from point-of-sale and booking systems over HTTP (POST /events: one JSON
event, a JSON array or NDJSON lines; GET /health) and hand them durably to the engine's
input: a Kafka topic or a JSON Lines file that `journeys run --tail` follows. Each event is
checked with the engine's decoder, tagged with its source, stored once per event id, and
acknowledged only after it is stored. See docs/ingest.md."""


def add_ingest_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `ingest` to the `journeys` command's subcommands."""
    ingest = commands.add_parser("ingest", description=DESCRIPTION,
                                 help="an HTTP service that takes events from venues' systems "
                                      "and stores them for the engine (see docs/ingest.md)")
    ingest.add_argument("--config", required=True, metavar="FILE",
                        help="the sources file: names and API keys or HMAC secrets, by "
                             "environment variable (see docs/ingest.md)")
    ingest.add_argument("--redis", required=True, metavar="URL",
                        help="Redis URL where the stored event ids are kept for 30 days")
    ingest.add_argument("--prefix", default="je", metavar="PREFIX",
                        help="Redis key prefix (default je)")
    ingest.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1)")
    ingest.add_argument("--port", type=port_number, default=DEFAULT_PORT, metavar="PORT",
                        help=f"port to listen on (default {DEFAULT_PORT})")
    ingest.add_argument("--event-types", metavar="FILE",
                        help="declared event types accepted beside the built-in ones, "
                             "checked against their fields (see docs/event-types.md)")
    out = ingest.add_argument_group("where events go (one of --events-out and --kafka)")
    out.add_argument("--events-out", metavar="FILE",
                     help="append events to this JSON Lines file, fsynced before each answer")
    out.add_argument("--kafka", metavar="BOOTSTRAP",
                     help="produce events to Kafka brokers (host:port,...), acks=all")
    out.add_argument("--events-topic", metavar="TOPIC",
                     help="with --kafka: the engine's events topic")
    out.add_argument("--kafka-config", metavar="FILE",
                     help="with --kafka: librdkafka settings as key=value lines (SASL, "
                          "TLS...); JOURNEYS_KAFKA_* variables override")
    ingest.set_defaults(handler=_ingest, parser_error=ingest.error)


def _ingest(args: argparse.Namespace) -> int:
    from connectors.ingest.server import serve
    from engine.console.server import check_free
    from engine.flow.runner import check_redis

    if bool(args.kafka) == bool(args.events_out):
        args.parser_error("give one of --events-out FILE and --kafka BOOTSTRAP")
    if args.kafka and not args.events_topic:
        args.parser_error("--kafka needs --events-topic")
    if not args.kafka and (args.events_topic or args.kafka_config):
        args.parser_error("--events-topic and --kafka-config go with --kafka")
    config = load_ingest_config(args.config)
    if args.event_types:
        from engine.core.declared_events import install
        from journeys_dsl.event_types import load_event_types

        install(load_event_types(args.event_types))
    check_free(args.host, args.port)
    check_redis(args.redis)
    sink = _open_sink(args)
    names = ", ".join(source.name for source in config.sources)
    print(f"ingest: http://{args.host}:{args.port}/events for {names}; events to "
          f"{sink.description}", file=sys.stderr, flush=True)
    serve(config, sink, args.redis, args.prefix, args.host, args.port)
    return 0


def _open_sink(args: argparse.Namespace) -> EventSink:
    if args.events_out:
        from connectors.ingest.file_sink import FileSink

        try:
            return FileSink(args.events_out)
        except OSError as exc:
            raise IngestError(f"cannot open {args.events_out}: {exc.strerror or exc}") from None
    from connectors.ingest.kafka_sink import KafkaSink
    from connectors.kafka_config import load_settings

    return KafkaSink(load_settings(args.kafka, args.kafka_config), args.events_topic)
