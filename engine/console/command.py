"""`journeys console` and `journeys explain`: their options and what they run."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.app.cli_parser import port_number
from engine.console.errors import ConsoleError

if TYPE_CHECKING:
    from engine.console.live import LiveEngine

# what the commands run is imported when they run, so the `journeys` command starts light

TOKEN_VARIABLE = "JOURNEYS_CONSOLE_TOKEN"
DEFAULT_PORT = 8350


def add_console_parsers(commands: argparse._SubParsersAction[Any],
                        add_state_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `console` and `explain` to the `journeys` command's subcommands."""
    console = commands.add_parser("console", help="a read-only web console of a live engine: "
                                                  "journeys, customers, explanations")
    console.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                         help="address to listen on (default 127.0.0.1)")
    console.add_argument("--port", type=port_number, default=DEFAULT_PORT, metavar="PORT",
                         help=f"port to listen on (default {DEFAULT_PORT})")
    console.add_argument("--token", metavar="TOKEN",
                         help=f"the access token (default: ${TOKEN_VARIABLE}, else a new "
                              "one printed at start)")
    _add_model_options(console)
    add_state_options(console)
    console.set_defaults(handler=_console)

    explain = commands.add_parser("explain", help="why a customer would or would not enter "
                                                  "each journey now, step by step")
    explain.add_argument("customer", metavar="CUSTOMER", help="customer id, email or phone")
    explain.add_argument("--journey", action="append", default=[], metavar="JOURNEY",
                         help="explain this journey only (its id; give it again for more)")
    explain.add_argument("--at", metavar="TIME",
                         help="explain as of this time (ISO-8601 with offset or epoch ms; "
                              "default: the engine's clock)")
    _add_model_options(explain)
    add_state_options(explain)
    explain.set_defaults(handler=_explain)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the files the engine runs with (as given to "
                                      "`journeys run`)")
    group.add_argument("--segments", metavar="FILE",
                       help="segments and loyalty tiers (default: built in)")
    group.add_argument("--scores", metavar="FILE",
                       help="score model parameters (default: built in)")
    group.add_argument("--policies", metavar="FILE", help="messaging policies (default: none)")
    group.add_argument("--event-types", metavar="FILE",
                       help="declared event types (default: the built-in types only)")


def _explain(args: argparse.Namespace) -> int:
    from engine.console.live import EngineModels, LiveEngine
    from engine.console.text import format_explanations
    from engine.core.declared_events import install as install_event_types
    from engine.flow.runner import check_redis, redis_endpoint
    from engine.storage.redis_client import connect

    _need_state(args, "explain")
    at = _time(args.at) if args.at else None
    models = EngineModels.load(args.segments, args.scores, args.policies, args.event_types)
    install_event_types(models.event_types)  # the dates and visits of the declared types
    with redis_endpoint(args.redis, args.state_dir) as url:
        check_redis(url)
        engine = LiveEngine(connect(url), args.prefix, args.shards, models)
        customer_id = resolve_customer(engine, args.customer)
        state, explanations = engine.explain(customer_id, args.journey, at)
        sys.stdout.write(format_explanations(customer_id, state.profile.timezone,
                                             explanations))
    return 0


def resolve_customer(engine: LiveEngine, query: str) -> str:
    """The one customer id `query` (an id, email or phone) names."""
    found = engine.find(query)
    if not found:
        raise ConsoleError(f"no customer with id, email or phone {query!r} under prefix "
                           f"{engine.prefix!r}")
    if len(found) > 1:
        raise ConsoleError(f"{len(found)} customers match {query!r}; give a customer id")
    return found[0]


def _time(text: str) -> int:
    from engine.core.events import EventError, parse_timestamp

    try:
        return parse_timestamp(int(text) if text.isdigit() else text)[0]
    except EventError as exc:
        raise ConsoleError(f"--at {text!r}: {exc}") from None


def _need_state(args: argparse.Namespace, command: str) -> None:
    if not args.redis and not args.state_dir:
        raise ConsoleError(f"journeys {command} reads a running engine's state: give --redis "
                           "URL (or --state-dir for an embedded state)")


def _console(args: argparse.Namespace) -> int:
    from engine.console.live import EngineModels
    from engine.console.server import check_free, serve
    from engine.core.declared_events import install as install_event_types
    from engine.flow.runner import check_redis, redis_endpoint

    _need_state(args, "console")
    check_free(args.host, args.port)
    token = args.token or os.environ.get(TOKEN_VARIABLE) or ""
    generated = not token
    if generated:
        token = secrets.token_urlsafe(24)
    if len(token) < 12:
        raise ConsoleError("the console token is too short: give at least 12 characters")
    models = EngineModels.load(args.segments, args.scores, args.policies, args.event_types)
    install_event_types(models.event_types)  # the dates and visits of the declared types
    with redis_endpoint(args.redis, args.state_dir) as url:
        check_redis(url)
        address = f"http://{args.host}:{args.port}/"
        said = f"token {token}" if generated else f"the token from --token or ${TOKEN_VARIABLE}"
        print(f"console: {address} (sign in with {said})", file=sys.stderr, flush=True)
        serve(url, args.prefix, args.shards, models, token, args.host, args.port)
    return 0
