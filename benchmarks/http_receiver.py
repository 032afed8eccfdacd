"""A webhook receiver on loopback for the delivery benchmark: answers every POST with 200
and appends its `Idempotency-Key` to a file, one per line.

    python -m benchmarks.http_receiver --port-file port.txt --keys keys.txt

HTTP/1.1 with keep-alive on asyncio streams, so that the receiver is not what limits the
sender. It writes its port to `--port-file` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import IO

REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
         b"\r\n{}")


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            keys: IO[bytes]) -> None:
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
            keys.write(key + b"\n")
            keys.flush()
            writer.write(REPLY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(port_file: Path, keys_path: Path) -> None:
    """Listen on a free loopback port until killed."""
    with keys_path.open("ab") as keys:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, keys), "127.0.0.1", 0, backlog=1024)
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
    args = parser.parse_args(argv)
    asyncio.run(serve(Path(args.port_file), Path(args.keys)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
