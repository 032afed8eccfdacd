"""A stop request made from a signal handler never hangs the process it stops."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from connectors.delivery.stop_request import StopRequest

ROOT = Path(__file__).resolve().parents[2]

# SIGALRM lands at a random instant while the main thread spins on wait(0): often inside
# the waiting code itself, where a lock-taking flag (threading.Event) deadlocks.
SIGNALLED_ROUNDS = """
import random, signal
from connectors.delivery.stop_request import StopRequest
for _ in range(3000):
    stop = StopRequest()
    signal.signal(signal.SIGALRM, lambda _signum, _frame: stop.set())
    signal.setitimer(signal.ITIMER_REAL, random.uniform(1e-5, 3e-4))
    while not stop.wait(0):
        pass
    stop.close()
print("stopped every time")
"""


def test_a_request_from_a_signal_handler_ends_every_wait() -> None:
    done = subprocess.run([sys.executable, "-c", SIGNALLED_ROUNDS], cwd=ROOT, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped every time"


def test_a_request_from_another_thread_ends_a_long_wait_at_once() -> None:
    with StopRequest() as stop:
        threading.Timer(0.05, stop.set).start()
        started = time.monotonic()
        assert stop.wait(30.0)
        assert time.monotonic() - started < 10.0


def test_an_unset_request_waits_out_its_timeout_and_says_so() -> None:
    with StopRequest() as stop:
        assert not stop.wait(0.01)
        assert not stop.is_set()


def test_a_request_after_close_is_still_seen() -> None:
    stop = StopRequest()
    stop.close()
    stop.set()
    assert stop.is_set() and stop.wait(5.0)
