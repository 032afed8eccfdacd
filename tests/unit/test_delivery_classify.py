"""How provider answers and SMTP errors become delivery results."""

from __future__ import annotations

import smtplib

from connectors.delivery.channels import smtp, telegram, webhook, whatsapp
from connectors.delivery.channels.http import HttpReply, retry_after


def reply(status: int, body: bytes = b"{}", **headers: str) -> HttpReply:
    return HttpReply(status, body, headers)


def test_smtp_codes_map_to_bounced_or_retryable_without_addresses() -> None:
    refused = smtp.classify(smtplib.SMTPRecipientsRefused(
        {"leon@example.com": (550, b"5.1.1 <leon@example.com>: user unknown")}))
    assert refused.status == "bounced" and not refused.retryable
    assert "leon@example.com" not in refused.detail and "550" in refused.detail
    later = smtp.classify(smtplib.SMTPDataError(451, b"try later"))
    assert later.status == "failed" and later.retryable
    login = smtp.classify(smtplib.SMTPAuthenticationError(535, b"bad credentials"))
    assert login.status == "failed" and not login.retryable
    gone = smtp.classify(smtplib.SMTPServerDisconnected("closed"))
    assert gone.retryable
    assert smtp.classify(ConnectionRefusedError(111, "refused")).retryable


def test_message_id_is_stable_and_safe() -> None:
    assert smtp.message_id("abc 1/2", "chain.example") == "<abc-1-2@chain.example>"


def test_webhook_statuses() -> None:
    assert webhook.classify(reply(204, b""), 60).status == "delivered"
    assert webhook.classify(reply(500), 60).retryable
    assert webhook.classify(reply(408), 60).retryable
    assert webhook.classify(reply(302), 60).status == "failed"
    assert not webhook.classify(reply(422), 60).retryable
    assert webhook.classify(reply(410), 60).status == "bounced"


def test_retry_after_header_is_capped_and_dates_are_ignored() -> None:
    assert retry_after({"retry-after": "120"}, 30) == 30
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 30) is None
    assert retry_after({}, 30) is None


def test_telegram_answers() -> None:
    not_found = telegram.classify(reply(400, b'{"ok":false,"error_code":400,'
                                             b'"description":"Bad Request: chat not found"}'), 60)
    assert not_found.status == "bounced"
    too_long = telegram.classify(reply(400, b'{"ok":false,"error_code":400,'
                                            b'"description":"Bad Request: message is too long"}'),
                                 60)
    assert too_long.status == "failed" and not too_long.retryable
    assert telegram.classify(reply(502, b"<html>bad gateway</html>"), 60).retryable


def test_whatsapp_answers_and_phone_digits() -> None:
    assert whatsapp.phone_digits("+49 (170) 123-4567") == "491701234567"
    expired = whatsapp.classify(reply(401, b'{"error":{"code":190,"message":"expired"}}'), 60)
    assert expired.status == "failed" and not expired.retryable
    assert whatsapp.classify(reply(500, b'{"error":{"code":131000,"message":"x"}}'), 60).retryable
