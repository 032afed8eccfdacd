"""Train the Zstandard dictionary of stored customer states, and compare it with the one in use.

`python -m benchmarks.state_dictionary OUT [--redis URL]` generates a chain (seed 101, 4,000
customers, a year), runs the ten reference journeys over it, trains a 16 KiB dictionary on
the stored states (their JSON documents, in key order, so the same states give the same
dictionary) and writes it to OUT. It then packs the states of a second chain (seed 7), which
the dictionary did not learn from, with the word list of format 0x02, with the dictionary in
use and with the new one, and prints the mean sizes.

`engine/core/state_dictionary.zdict` was made this way. It is frozen with format 0x03: a
dictionary trained again (another engine version stores other documents) goes into the code
with a new format byte, and the old file stays to read the states written with it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import zstandard

from benchmarks.suite import jsonl_source, run_engine_processes
from engine.app.generator import ChainConfig, write_jsonl
from engine.core.state_codec import TRAINED_DICTIONARY_FILE, pack, pack_with_words, unpack
from engine.flow.runner import redis_endpoint
from engine.storage.redis_client import connect
from engine.storage.store import delete_matching

TRAINING_CHAIN = ChainConfig(seed=101, customers=4000, days=365)
CHECK_CHAIN = ChainConfig(seed=7, customers=4000, days=365)
DICTIONARY_BYTES = 16384


def stored_documents(chain: ChainConfig, redis_url: str, work: Path, prefix: str
                     ) -> list[bytes]:
    """The JSON documents of the states a run of the reference journeys stores for `chain`,
    in key order."""
    events = work / f"{prefix}.jsonl"
    write_jsonl(chain, events)
    run_engine_processes(jsonl_source(events, work, prefix), redis_url, prefix)
    client = connect(redis_url)
    keys = sorted(client.scan_iter(match=f"{{{prefix}:*:c:*", count=1000))
    documents = []
    for key in keys:
        raw = client.get(key)
        if isinstance(raw, bytes):
            documents.append(orjson.dumps(unpack(raw)[0]))
    delete_matching(client, f"*{prefix}*")
    return documents


def train(documents: Sequence[bytes]) -> bytes:
    """A dictionary of DICTIONARY_BYTES trained on `documents` for level 1."""
    return zstandard.train_dictionary(DICTIONARY_BYTES, list(documents), level=1,
                                      threads=1).as_bytes()


def _mean_size(documents: Sequence[bytes], dictionary: bytes) -> float:
    compressor = zstandard.ZstdCompressor(
        level=1, dict_data=zstandard.ZstdCompressionDict(dictionary), write_checksum=False,
        write_content_size=True, write_dict_id=False)
    return 1 + statistics.fmean(len(compressor.compress(d)) for d in documents)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.state_dictionary",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="where the trained dictionary goes")
    parser.add_argument("--redis", default=None,
                        help="Redis URL (default: an embedded server started for the run)")
    args = parser.parse_args(argv)
    tag = f"zdict{time.time_ns()}"
    with tempfile.TemporaryDirectory(prefix="journeys-zdict-") as folder, \
            redis_endpoint(args.redis) as url:
        learned = stored_documents(TRAINING_CHAIN, url, Path(folder), f"{tag}t")
        dictionary = train(learned)
        args.out.write_bytes(dictionary)
        checked = stored_documents(CHECK_CHAIN, url, Path(folder), f"{tag}c")
    words = statistics.fmean(len(pack_with_words(orjson.loads(d))) for d in checked)
    in_use = statistics.fmean(len(pack(orjson.loads(d))) for d in checked)
    print(f"trained on {len(learned):,} states; checked on {len(checked):,} others: "
          f"mean stored bytes {words:,.0f} with the word list (0x02), {in_use:,.0f} with "
          f"{TRAINED_DICTIONARY_FILE.name} (0x03), {_mean_size(checked, dictionary):,.0f} "
          f"with {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
