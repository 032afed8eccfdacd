"""A progress bar for a replay, fed by the shards' applied positions in Redis.

The JSONL source commits each batch's byte offset with the state it produced, so the
lowest offset across shards over the file's size is the share of the file fully applied.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

import redis

from engine.storage.redis_client import connect
from engine.storage.store import min_applied_position

BAR_WIDTH = 30


class ReplayProgress:
    """Redraws one line on `stream` a few times a second until stopped."""

    def __init__(self, stream: TextIO, url: str, prefix: str, shards: int, source_id: str,
                 total_bytes: int, total_events: int, interval_s: float = 0.25) -> None:
        self.stream = stream
        self.url = url
        self.prefix = prefix
        self.shards = shards
        self.source_id = source_id
        self.total_bytes = max(total_bytes, 1)
        self.total_events = total_events
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="replay-progress", daemon=True)
        self._began = time.perf_counter()
        self._finished = False

    def __enter__(self) -> ReplayProgress:
        self._began = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._finished = exc_type is None
        self._stop.set()
        self._thread.join()

    def line(self, fraction: float, elapsed_s: float) -> str:
        """The bar for `fraction` of the file done after `elapsed_s` seconds."""
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * BAR_WIDTH)
        events = int(self.total_events * fraction)
        rate = events / elapsed_s if elapsed_s > 0 else 0.0
        return (f"\rreplaying [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{fraction * 100:5.1f}%  {events:,}/{self.total_events:,} events  "
                f"{rate:,.0f} events/s ")

    def _loop(self) -> None:
        client = connect(self.url, socket_timeout=2)
        fraction = 0.0
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    position = min_applied_position(client, self.prefix, self.shards,
                                                    self.source_id)
                except redis.RedisError:
                    continue
                fraction = max(fraction, (position + 1) / self.total_bytes)
                self._draw(fraction)
            if self._finished:
                self._draw(1.0)
            self.stream.write("\n")
            self.stream.flush()
        finally:
            client.close()

    def _draw(self, fraction: float) -> None:
        self.stream.write(self.line(fraction, time.perf_counter() - self._began))
        self.stream.flush()
