"""The shards' routing keys spread them evenly over real dataflow processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kafka_broker import free_port

from engine.storage.shard_keys import shard_keys, shard_of_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = """\
import sys
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main
from bytewax.testing import TestingSource

process, addresses, keys = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")


def note(state, key):
    print(f"placed {process} {key}", flush=True)
    return None, None


flow = Dataflow("probe")
items = op.input("keys", flow, TestingSource(keys if process == 0 else []))
keyed = op.map("key", items, lambda key: (key, key))
op.inspect("done", op.stateful_map("place", keyed, note), lambda *_: None)
cli_main(flow, workers_per_process=1, process_id=process, addresses=addresses)
"""


@pytest.mark.parametrize("shards", [4, 8])
def test_each_process_runs_every_other_shard(shards: int, tmp_path: Path) -> None:
    keys = shard_keys(shards, 2)
    assert [shard_of_key(key) for key in keys] == list(range(shards))
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    addresses = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    children = [subprocess.Popen([sys.executable, str(probe), str(index), addresses,
                                  ",".join(keys)], cwd=ROOT, stdout=subprocess.PIPE)
                for index in range(2)]
    placed: dict[int, int] = {}
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        for line in out.decode().splitlines():
            if not line.startswith("placed "):
                continue
            _, process, key = line.split()
            placed[shard_of_key(key)] = int(process)
    assert placed == {shard: shard % 2 for shard in range(shards)}
