"""`journeys run`'s NATS options: a mistake in them is one line on stderr, before anything
connects."""

from __future__ import annotations

import pytest

from engine.app.cli import main

RUN = ["run", "--journeys", "examples/journeys"]


@pytest.mark.parametrize(("extra", "said"), [
    (["--events-subject", "a.b"], "--events-subject needs --nats URL"),
    (["--nats", "nats://x:4222", "--events", "e.jsonl"],
     "--nats needs --events-subject, --commands-subject or"),
    (["--nats", "nats://x:4222", "--events", "e.jsonl", "--events-subject", "a.b"],
     "--events and --events-subject cannot be combined"),
    (["--nats", "nats://x:4222", "--events-subject", "a.*"], "is not a plain NATS subject"),
    (["--nats", "nats://x:4222", "--events", "e.jsonl", "--commands-subject", "c",
      "--nats-until-end"], "--nats-until-end needs --events-subject"),
    (["--nats", "nats://x:4222", "--commands-subject", "c"], "one of --events, --kafka or"),
    (["--kafka", "k:9092", "--events-topic", "e", "--commands-topic", "c",
      "--dead-letter-topic", "d", "--nats", "nats://x:4222", "--commands-subject", "c"],
     "--kafka and --nats cannot be combined"),
])
def test_nats_option_mistakes_are_one_line(extra: list[str], said: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*RUN, *extra])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert err.startswith("journeys run: ") and err.count("\n") == 1
