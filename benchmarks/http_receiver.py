"""A webhook receiver on loopback for the delivery benchmark: answers every POST with 200
and appends its `Idempotency-Key` to a file, one per line.

    python -m benchmarks.http_receiver --port-file port.txt --keys keys.txt \
        --messages messages.txt

It models a provider that honours `Idempotency-Key`, as webhook receivers do: a request
whose key it has seen is answered 200 with `Idempotent-Replayed: true` and makes no new
message. `--keys` gets every request's key (repeated requests show there), `--messages`
the key of each message made (what the customer would get).

HTTP/1.1 with keep-alive on asyncio streams, so that the receiver is not what limits the
sender. It writes its port to `--port-file` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
         b"\r\n{}")
REPLAYED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Idempotent-Replayed: true\r\n\r\n{}")


class _Provider:
    """The keys seen so far and the two files; one event loop, so no lock."""

    def __init__(self, keys: IO[bytes], messages: IO[bytes] | None) -> None:
        self.keys = keys
        self.messages = messages
        self.seen: set[bytes] = set()

    def receive(self, key: bytes) -> bytes:
        """Log the request; make a message unless its key was seen; the reply."""
        self.keys.write(key + b"\n")
        self.keys.flush()
        if key != b"-" and key in self.seen:
            return REPLAYED
        self.seen.add(key)
        if self.messages is not None:
            self.messages.write(key + b"\n")
            self.messages.flush()
        return REPLY


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            provider: _Provider) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            key = b"-"
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip())
                elif lowered == b"idempotency-key":
                    key = value.strip()
            if length:
                await reader.readexactly(length)
            writer.write(provider.receive(key))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(port_file: Path, keys_path: Path, messages_path: Path | None = None) -> None:
    """Listen on a free loopback port until killed."""
    with keys_path.open("ab") as keys, \
            (messages_path or Path(os.devnull)).open("ab") as messages:
        provider = _Provider(keys, messages if messages_path else None)
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, provider), "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        written = port_file.with_name(port_file.name + ".tmp")
        written.write_text(str(port))
        written.replace(port_file)
        async with server:
            await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_receiver",
                                     description=__doc__)
    parser.add_argument("--port-file", required=True, help="where the port is written")
    parser.add_argument("--keys", required=True, help="where received keys are appended")
    parser.add_argument("--messages",
                        help="where the key of each message made (a new key) is appended")
    args = parser.parse_args(argv)
    asyncio.run(serve(Path(args.port_file), Path(args.keys),
                      Path(args.messages) if args.messages else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
