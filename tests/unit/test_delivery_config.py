"""The delivery config file: valid files, secrets from the environment, errors with context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.delivery.channels import (
    PushChannel,
    SmtpChannel,
    SmtpSettings,
    TelegramChannel,
    WebhookChannel,
    WebhookSettings,
    WhatsAppChannel,
)
from connectors.delivery.config import (
    CHANNELS,
    DEFAULT_AFTER_CRASH,
    DeliveryConfigError,
    RetrySettings,
    build_connectors,
    load_delivery_config,
    parse_delivery_config,
)

ENV = {"SMTP_PASSWORD": "pw", "TELEGRAM_TOKEN": "tg", "WA_TOKEN": "wa", "HOOK": "h",
       "PUSH": "p", "SMS": "s"}

FULL = """
retry: {max_attempts: 3, base_delay_s: 1, max_delay_s: 20}
channels:
  email:
    host: smtp.example.com
    security: starttls
    username: mailer
    password_env: SMTP_PASSWORD
    from: "Chain <hello@chain.example>"
  telegram: {token_env: TELEGRAM_TOKEN, parse_mode: HTML}
  whatsapp: {phone_number_id: 1098, token_env: WA_TOKEN}
  webhook: {url: "https://crm.example.com/hook", secret_env: HOOK, headers: {X-Env: prod}}
  push: {url: "https://push.example.com/send", secret_env: PUSH}
  sms: {url: "https://sms.example.com/send", secret_env: SMS}
"""


def write(tmp_path: Path, text: str, name: str = "delivery.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(data: Any, environ: dict[str, str] | None = None) -> DeliveryConfigError:
    with pytest.raises(DeliveryConfigError) as caught:
        parse_delivery_config(data, "delivery.yaml", ENV if environ is None else environ)
    return caught.value


def test_a_full_config_loads_with_secrets_from_the_environment(tmp_path: Path) -> None:
    config = load_delivery_config(write(tmp_path, FULL), ENV)
    assert config.retry == RetrySettings(3, 1.0, 20.0)
    email = config.channels["email"].settings
    assert isinstance(email, SmtpSettings)
    assert (email.port, email.security, email.password) == (587, "starttls", "pw")
    assert config.channels["sms"].type == "webhook"
    webhook = config.channels["webhook"].settings
    assert isinstance(webhook, WebhookSettings) and webhook.headers == {"X-Env": "prod"}
    connectors = build_connectors(config)
    assert isinstance(connectors["email"], SmtpChannel)
    assert isinstance(connectors["telegram"], TelegramChannel)
    assert isinstance(connectors["whatsapp"], WhatsAppChannel)
    assert isinstance(connectors["push"], PushChannel)
    assert isinstance(connectors["webhook"], WebhookChannel)
    assert isinstance(connectors["sms"], WebhookChannel)


def test_json_files_load_too(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"channels": {"telegram": {"token_env": "TELEGRAM_TOKEN"}}}),
                 "delivery.json")
    assert load_delivery_config(path, ENV).retry == RetrySettings()


def test_a_missing_environment_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "channels:\n  telegram: {token_env: NOT_SET_ANYWHERE}\n")
    with pytest.raises(DeliveryConfigError) as caught:
        load_delivery_config(path, {})
    assert caught.value.path == str(path)
    assert caught.value.key == "channels.telegram.token_env"
    assert str(caught.value) == (f"{path}: channels.telegram.token_env: environment variable "
                                 "NOT_SET_ANYWHERE is not set")


def test_inline_secrets_are_refused_without_echoing_them() -> None:
    error = error_for({"channels": {"webhook": {"url": "https://x.example", "secret": "abc"}}})
    assert error.key == "channels.webhook.secret"
    assert "secret_env" in error.reason and "abc" not in str(error)


@pytest.mark.parametrize(("data", "key", "words"), [
    ({"channels": {"fax": {}}}, "channels.fax", "unknown channel"),
    ({"channels": {"email": {"from": "a@b.c"}}}, "channels.email.host", "required"),
    ({"channels": {"email": {"host": "h", "from": "a@b.c", "port": "25"}}},
     "channels.email.port", "whole number"),
    ({"channels": {"email": {"host": "h", "from": "a@b.c", "security": "tls"}}},
     "channels.email.security", "one of none, starttls, ssl"),
    ({"channels": {"email": {"host": "h", "from": "a@b.c", "password_env": "SMTP_PASSWORD"}}},
     "channels.email.username", "required when password_env"),
    ({"channels": {"webhook": {"url": "ftp://x", "secret_env": "HOOK"}}},
     "channels.webhook.url", "http:// or https://"),
    ({"channels": {"webhook": {"url": "https://x", "secret_env": "HOOK", "retries": 3}}},
     "channels.webhook.retries", "not a known setting"),
    ({"channels": {"webhook": {"url": "https://x", "secret_env": "not a name"}}},
     "channels.webhook.secret_env", "not an environment variable name"),
    ({"channels": {"push": {"type": "pigeon"}}}, "channels.push.type", "one of"),
    ({"channels": {"telegram": {"token_env": "TELEGRAM_TOKEN", "parse_mode": "bbcode"}}},
     "channels.telegram.parse_mode", "HTML"),
    ({"channels": {"whatsapp": {"token_env": "WA_TOKEN"}}},
     "channels.whatsapp.phone_number_id", "required"),
    ({"channels": {"telegram": "yes"}}, "channels.telegram", "mapping"),
    ({"channels": {}}, "channels", "at least one channel"),
    ({"channels": {"telegram": {"token_env": "TELEGRAM_TOKEN"}}, "retry": {"max_attempts": 0}},
     "retry.max_attempts", "at least 1"),
    ({"channels": {"telegram": {"token_env": "TELEGRAM_TOKEN"}}, "other": 1}, "other",
     "not a known section"),
])
def test_errors_name_the_key(data: Any, key: str, words: str) -> None:
    error = error_for(data)
    assert error.key == key
    assert words in error.reason
    assert str(error).startswith(f"delivery.yaml: {key}: ")


def test_a_file_that_does_not_parse_or_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DeliveryConfigError, match="does not parse"):
        load_delivery_config(write(tmp_path, "channels: [unclosed"), ENV)
    with pytest.raises(DeliveryConfigError, match="cannot read"):
        load_delivery_config(tmp_path / "missing.yaml", ENV)
    with pytest.raises(DeliveryConfigError, match="mapping with 'channels'"):
        load_delivery_config(write(tmp_path, "- a list\n"), ENV)


def test_the_command_line_reports_config_errors_with_exit_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.delivery.service import deliver_command

    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    config = write(tmp_path, "channels:\n  telegram: {token_env: NOT_SET_ANYWHERE}\n")
    (tmp_path / "commands.jsonl").write_text("", encoding="utf-8")
    status = deliver_command(["--commands", str(tmp_path / "commands.jsonl"),
                              "--config", str(config), "--templates", str(tmp_path),
                              "--events-out", str(tmp_path / "e.jsonl"),
                              "--dead-letter", str(tmp_path / "d.jsonl"),
                              "--ledger", str(tmp_path / "l.sqlite")])
    assert status == 2
    assert "channels.telegram.token_env" in capsys.readouterr().err


def test_after_crash_defaults_per_channel(tmp_path: Path) -> None:
    config = load_delivery_config(write(tmp_path, FULL), ENV)
    assert {name: channel.after_crash for name, channel in config.channels.items()} == {
        "email": "resend", "webhook": "resend", "telegram": "give_up", "whatsapp": "give_up",
        "push": "give_up", "sms": "give_up"}
    assert config.at_most_once() == {"telegram", "whatsapp", "push", "sms"}
    assert DEFAULT_AFTER_CRASH.keys() == set(CHANNELS)


def test_after_crash_can_be_set_for_each_channel() -> None:
    config = parse_delivery_config({"channels": {
        "webhook": {"url": "https://x.example", "secret_env": "HOOK", "after_crash": "give_up"},
        "sms": {"url": "https://s.example", "secret_env": "SMS", "after_crash": "resend"},
        "whatsapp": {"type": "webhook", "url": "https://w.example", "secret_env": "WA_TOKEN"},
    }}, "delivery.yaml", ENV)
    assert config.channels["webhook"].after_crash == "give_up"
    assert config.channels["sms"].after_crash == "resend"
    assert config.channels["whatsapp"].after_crash == "give_up"  # the channel's, not the type's
    assert config.at_most_once() == {"webhook", "whatsapp"}


@pytest.mark.parametrize("value", ["retry", "at_least_once", "", True, 1, ["resend"]])
def test_a_wrong_after_crash_names_the_key_and_the_choices(value: Any) -> None:
    error = error_for({"channels": {"telegram": {"token_env": "TELEGRAM_TOKEN",
                                                 "after_crash": value}}})
    assert error.key == "channels.telegram.after_crash"
    assert str(error).startswith("delivery.yaml: channels.telegram.after_crash: ")
    if isinstance(value, str) and value:
        assert "one of resend, give_up" in error.reason
