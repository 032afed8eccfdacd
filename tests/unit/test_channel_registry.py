"""The channel registry: every part of the product that knows channels reads it, and the
Viber channel exists only through it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from connectors.delivery.channels import viber
from connectors.delivery.channels.http import HttpReply
from connectors.delivery.channels.registry import CONNECTOR_TYPES, UnknownConnectorError, connector
from connectors.delivery.config import (
    DeliveryConfigError,
    build_connectors,
    parse_delivery_config,
)
from connectors.delivery.template_check import check_templates
from connectors.delivery.templates import OPTIONAL_PARTS, REQUIRED_PARTS
from engine.core.commands import has_address
from engine.core.policy_gate import PolicyGate
from engine.core.profile import Profile
from engine.core.state import CustomerState
from journeys_dsl.channels import CHANNELS, PARTS, SPECS, channel_spec
from journeys_dsl.errors import JourneyValidationError
from journeys_dsl.loader import load_journey_text
from journeys_dsl.plan import SendAction
from journeys_dsl.policies import load_policies_text
from journeys_dsl.schema import journey_json_schema

VIBER_JOURNEY = """\
journey: viber_thanks
version: 1
entry:
  event: visit
steps:
  - id: thanks
    actions:
      - send: {channel}
        template: thanks
"""


def test_every_spec_is_consistent_with_the_profile_and_the_template_parts() -> None:
    assert len(set(CHANNELS)) == len(SPECS)
    profile_fields = {f.name for f in dataclasses.fields(Profile)}
    for spec in SPECS:
        assert spec.address_field is None or spec.address_field in profile_fields, spec.name
        assert set(spec.required_parts) | set(spec.optional_parts) <= set(PARTS), spec.name
        assert spec.required_parts or spec.optional_parts, spec.name
        assert channel_spec(spec.name) is spec
    assert channel_spec("fax") is None


def test_every_channel_names_a_connector_module_that_defines_it() -> None:
    for kind in CONNECTOR_TYPES:
        assert connector(kind).type == kind
    assert {spec.connector for spec in SPECS} == set(CONNECTOR_TYPES)
    with pytest.raises(UnknownConnectorError, match="pigeon"):
        connector("pigeon")


def test_a_journey_may_send_on_viber() -> None:
    plan = load_journey_text(VIBER_JOURNEY.format(channel="viber"), "v.yaml")
    [action] = plan.steps[0].actions
    assert isinstance(action, SendAction) and action.channel == "viber"


def test_an_unknown_channel_is_refused_at_its_position_with_a_suggestion() -> None:
    with pytest.raises(JourneyValidationError) as caught:
        load_journey_text(VIBER_JOURNEY.format(channel="vibr"), "v.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith("v.yaml:8:15: unknown channel 'vibr'; did you mean "
                                   "'viber'?")


def test_the_json_schema_lists_the_registry_channels() -> None:
    schema = journey_json_schema()
    assert "'viber'" in repr(schema) and f"{list(CHANNELS)!r}" in repr(schema)


def test_policies_accept_viber_caps_and_send_windows() -> None:
    policies = load_policies_text(
        "frequency_cap: {max: 3, per: 7d, channels: {viber: 1}}\n"
        "send_windows:\n  viber: {from: \"10:00\", to: \"20:00\"}\n", "p.yaml")
    assert policies.cap is not None and policies.cap.channels == {"viber": 1}
    assert policies.window_for("viber") == (600, 1200)


def test_the_engine_reads_each_channels_address_field_from_the_registry() -> None:
    reachable = Profile(phone="+49 151 2345678")
    assert has_address(reachable, "viber") and has_address(reachable, "sms")
    assert not has_address(reachable, "telegram") and not has_address(reachable, "email")
    assert not has_address(Profile(), "viber")
    assert has_address(Profile(), "push") and has_address(Profile(), "webhook")
    assert not has_address(reachable, "fax")


def test_viber_refusals_follow_consent_and_address() -> None:
    gate = PolicyGate(load_policies_text("consent: opt_in\n", "p.yaml"))
    state = CustomerState("ann", profile=Profile(phone="+49 151 2345678"))
    assert gate.refusal(state, "viber", 0) == "no_consent"
    state.profile.consents["viber"] = True
    assert gate.refusal(state, "viber", 0) is None
    state.profile.phone = None
    assert gate.refusal(state, "viber", 0) == "unreachable"


def test_a_channel_that_needs_no_consent_skips_the_consent_policy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = channel_spec("webhook")
    assert spec is not None and spec.needs_consent
    gate = PolicyGate(load_policies_text("consent: opt_in\n", "p.yaml"))
    state = CustomerState("ann")
    assert gate.refusal(state, "webhook", 0) == "no_consent"
    unconsented = dataclasses.replace(spec, needs_consent=False)
    monkeypatch.setattr("engine.core.policy_gate.channel_spec",
                        lambda name: unconsented if name == "webhook" else channel_spec(name))
    assert gate.refusal(state, "webhook", 0) is None
    assert gate.refusal(state, "sms", 0) == "no_consent"


def test_template_parts_come_from_the_registry(tmp_path: Path) -> None:
    assert REQUIRED_PARTS["viber"] == ("txt",) and "viber" not in OPTIONAL_PARTS
    assert REQUIRED_PARTS["email"] == ("subject.txt", "txt") and OPTIONAL_PARTS["email"] == (
        "html",)
    journey = tmp_path / "viber.yaml"
    journey.write_text(VIBER_JOURNEY.format(channel="viber"), encoding="utf-8")
    (tmp_path / "templates" / "thanks").mkdir(parents=True)
    [problem] = check_templates([journey], tmp_path / "templates")
    assert "has no en.txt, which viber messages need" in problem.message
    (tmp_path / "templates" / "thanks" / "en.txt").write_text("Hi {{ first_name }}",
                                                               encoding="utf-8")
    assert check_templates([journey], tmp_path / "templates") == []


# -- Viber delivery settings ----------------------------------------------------------------

ENV = {"VIBER_TOKEN": "vb-token"}


def viber_config(**settings: Any) -> dict[str, Any]:
    return {"channels": {"viber": {"token_env": "VIBER_TOKEN", "sender": "Chain", **settings}}}


def test_viber_settings_load_with_the_token_from_the_environment() -> None:
    config = parse_delivery_config(viber_config(url="http://127.0.0.1:9/send"), "d.yaml", ENV)
    channel = config.channels["viber"]
    assert channel.type == "viber" and channel.after_crash == "give_up"
    assert channel.settings == viber.ViberSettings(token="vb-token", sender="Chain",
                                                   url="http://127.0.0.1:9/send")
    assert isinstance(build_connectors(config)["viber"], viber.ViberChannel)
    default = parse_delivery_config(viber_config(), "d.yaml", ENV).channels["viber"]
    assert default.settings.url == viber.DEFAULT_URL


@pytest.mark.parametrize(("data", "key", "words"), [
    ({"channels": {"viber": {"token_env": "VIBER_TOKEN"}}}, "channels.viber.sender",
     "required"),
    (viber_config(sender="A sender name far longer than Viber allows"),
     "channels.viber.sender", "at most 28"),
    (viber_config(token="inline"), "channels.viber.token", "environment variable"),
    (viber_config(token_env="UNSET_VIBER"), "channels.viber.token_env", "not set"),
    (viber_config(url="ftp://viber"), "channels.viber.url", "http:// or https://"),
    (viber_config(receiver="x"), "channels.viber.receiver", "not a known setting"),
    ({"channels": {"vibre": {}}}, "channels.vibre", "did you mean 'viber'?"),
])
def test_viber_settings_errors_name_the_key(data: Any, key: str, words: str) -> None:
    with pytest.raises(DeliveryConfigError) as caught:
        parse_delivery_config(data, "d.yaml", ENV)
    assert caught.value.key == key and words in caught.value.reason


# -- Viber answers --------------------------------------------------------------------------

def reply(status: int, body: bytes, **headers: str) -> HttpReply:
    return HttpReply(status, body, headers)


def test_viber_answers_are_classified() -> None:
    sent = viber.classify(reply(200, b'{"status":0,"status_message":"ok",'
                                     b'"message_token":5741311803571721087}'), 60)
    assert sent.status == "delivered" and sent.provider_id == "5741311803571721087"
    for code in (5, 6, 11):
        body = f'{{"status":{code},"status_message":"receiverNotSubscribed"}}'.encode()
        gone = viber.classify(reply(200, body), 60)
        assert gone.status == "bounced" and not gone.retryable
        assert gone.detail == f"Viber {code}: receiverNotSubscribed"
    limited = viber.classify(reply(200, b'{"status":12,"status_message":"tooManyRequests"}',
                                   **{"Retry-After": "120"}), 60)
    assert limited.status == "failed" and limited.retryable and limited.retry_after_s == 60
    token = viber.classify(reply(200, b'{"status":2,"status_message":"invalidAuthToken"}'), 60)
    assert token.status == "failed" and not token.retryable
    assert viber.classify(reply(503, b"busy"), 60).retryable
    assert viber.classify(reply(429, b""), 60).retryable
    unclear = viber.classify(reply(200, b"not json"), 60)
    assert unclear.status == "failed" and not unclear.retryable


def test_viber_receiver_is_phone_digits_or_the_user_id() -> None:
    assert viber.receiver("+49 (151) 234-5678") == "491512345678"
    assert viber.receiver("01234567890A=") == "01234567890A="
