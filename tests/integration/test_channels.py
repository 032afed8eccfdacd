"""Channels against real local servers: SMTP (aiosmtpd) and HTTP fakes of the provider APIs."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from harness import Engine, at, event, visit
from loopback_http import serving

from connectors.delivery.channels import (
    PushChannel,
    SmtpChannel,
    SmtpSettings,
    TelegramChannel,
    TelegramSettings,
    WebhookChannel,
    WebhookSettings,
    WhatsAppChannel,
    WhatsAppSettings,
)
from connectors.delivery.channels.viber import ViberChannel, ViberSettings
from connectors.delivery.service import (
    DeliveryLedger,
    DeliverySummary,
    deliver,
    deliver_command,
    deliver_file,
)
from connectors.delivery.templates import RenderedMessage

SECRET = "s3cret-for-tests"
TOKEN = "123456:TEST-TOKEN"


class FakeRenderer:
    """Renders `Hello <first_name>` without template files."""

    def render(self, command: dict[str, Any]) -> RenderedMessage:
        name = command.get("vars", {}).get("first_name", "there")
        return RenderedMessage(f"Thanks, {name}", f"Hello {name}", f"<p>Hello <b>{name}</b></p>")


def command(command_id: str, channel: str, to: Any = None, **extra: Any) -> dict[str, Any]:
    return {"command_id": command_id, "customer_id": "c000182",
            "journey": "impressed_newcomer", "version": 1, "step": "thanks",
            "channel": channel, "template": "newcomer_thanks", "language": "en", "to": to,
            "vars": {"first_name": "Leon", "points": 500},
            "send_at": "2025-03-03T10:00:00.000Z", "timezone": "Europe/Berlin", **extra}


@dataclass
class Run:
    summary: DeliverySummary
    events: list[dict[str, Any]]
    dead: list[dict[str, Any]]
    sleeps: list[float]


def run(commands: list[dict[str, Any]], connectors: dict[str, Any], ledger: DeliveryLedger,
        max_attempts: int = 4) -> Run:
    events: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    sleeps: list[float] = []
    summary = deliver(commands, FakeRenderer(), connectors, ledger, max_attempts=max_attempts,
                      base_delay_s=0.5, sleep=sleeps.append, on_event=events.append,
                      on_dead_letter=dead.append)
    return Run(summary, events, dead, sleeps)


# -- an HTTP server answering from a script ----------------------------------------------

@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class FakeApi:
    """Records every POST and answers with `respond(request)`."""

    url: str
    respond: Callable[[Request], Reply]
    requests: list[Request] = field(default_factory=list)
    delay_s: float = 0.0

    def answer(self, *replies: Reply) -> None:
        """Answer with `replies` in turn, then repeat the last one."""
        queue = list(replies)
        self.respond = lambda _request: queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi("", lambda _request: (200, {}))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = Request(self.path, dict(self.headers.items()), self.rfile.read(length))
            fake.requests.append(request)
            if fake.delay_s:
                time.sleep(fake.delay_s)
            status, body, *rest = fake.respond(request)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                for name, value in (rest[0] if rest else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return None

    with serving(Handler) as base:
        fake.url = base
        yield fake


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- SMTP ----------------------------------------------------------------------------------

class MailBox:
    """An aiosmtpd handler that keeps messages and refuses some recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: user unknown"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        return "250 OK queued"


@pytest.fixture
def smtp() -> Iterator[tuple[MailBox, SmtpSettings]]:
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        yield box, SmtpSettings(host="127.0.0.1", port=controller.port,
                                sender="Cafe Chain <hello@chain.example>", timeout_s=5)
    finally:
        controller.stop()


def test_email_is_multipart_with_text_html_and_command_headers(
        smtp: tuple[MailBox, SmtpSettings], ledger: DeliveryLedger) -> None:
    box, settings = smtp
    result = run([command("cmd-mail-1", "email", "leon@example.com")],
                 {"email": SmtpChannel(settings)}, ledger)
    assert result.summary.delivered == 1
    [mail] = box.messages
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Message-ID"] == "<cmd-mail-1@chain.example>"
    assert mail["X-Command-Id"] == "cmd-mail-1"
    assert mail["To"] == "leon@example.com"
    assert mail["Subject"] == "Thanks, Leon"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Hello Leon"
    assert html is not None and "<b>Leon</b>" in html.get_content()
    assert box.envelopes[0].mail_from == "hello@chain.example"
    assert ledger.get("cmd-mail-1").provider_id == "<cmd-mail-1@chain.example>"
    assert result.events[0]["status"] == "delivered"


def test_email_5xx_bounces_without_retry_and_4xx_retries(
        smtp: tuple[MailBox, SmtpSettings], ledger: DeliveryLedger) -> None:
    _box, settings = smtp
    result = run([command("cmd-bounce", "email", "nobody@example.com"),
                  command("cmd-later", "email", "later@example.com")],
                 {"email": SmtpChannel(settings)}, ledger, max_attempts=3)
    assert [e["status"] for e in result.events] == ["bounced", "failed"]
    assert ledger.get("cmd-bounce").attempts == 1
    assert ledger.get("cmd-later").attempts == 3
    assert len(result.sleeps) == 2
    [dead] = result.dead
    assert dead["command_id"] == "cmd-later" and dead["attempts"] == 3
    assert "451" in dead["reason"]
    bounce = ledger.get("cmd-bounce")
    assert bounce is not None and "550" in bounce.detail
    assert "nobody@example.com" not in bounce.detail


def test_email_connection_refused_is_retryable() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), sender="a@chain.example",
                            timeout_s=2)
    result = SmtpChannel(settings).send(command("cmd-x", "email", "leon@example.com"),
                                        RenderedMessage("s", "t", None))
    assert result.status == "failed" and result.retryable


# -- webhook and push ----------------------------------------------------------------------

def verified(request: Request, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-Signature", ""), expected)


def test_webhook_signs_and_retries_after_server_errors(api: FakeApi,
                                                      ledger: DeliveryLedger) -> None:
    answers = iter([500, 500, 200])

    def respond(request: Request) -> Reply:
        if not verified(request, SECRET) or request.headers.get("Idempotency-Key") != "cmd-wh":
            return 401, {"error": "bad signature"}
        return next(answers), {"id": "rcv-1"}

    api.respond = respond
    channel = WebhookChannel(WebhookSettings(url=f"{api.url}/hooks/journeys", secret=SECRET))
    result = run([command("cmd-wh", "webhook")], {"webhook": channel}, ledger)
    assert result.summary.delivered == 1 and result.summary.attempts == 3
    assert len(api.requests) == 3
    assert {r.path for r in api.requests} == {"/hooks/journeys"}
    assert all(r.headers["X-Timestamp"].isdigit() for r in api.requests)
    body = api.requests[0].json()
    assert body["customer_id"] == "c000182"
    assert body["message"] == {"subject": "Thanks, Leon", "text": "Hello Leon",
                               "html": "<p>Hello <b>Leon</b></p>"}
    assert len(result.sleeps) == 2 and 0.25 <= result.sleeps[0] < 0.5 <= result.sleeps[1] < 1
    assert ledger.get("cmd-wh").provider_id == "rcv-1"
    assert result.events == [{
        "event_id": "msg-cmd-wh-delivered", "customer_id": "c000182", "type": "message",
        "ts": result.events[0]["ts"], "status": "delivered", "command_id": "cmd-wh",
        "channel": "webhook", "journey": "impressed_newcomer"}]


def test_webhook_wrong_secret_is_a_client_error_without_retry(api: FakeApi,
                                                             ledger: DeliveryLedger) -> None:
    api.respond = lambda r: (200, {}) if verified(r, SECRET) else (401, {"error": "signature"})
    channel = WebhookChannel(WebhookSettings(url=api.url, secret="wrong"))
    result = run([command("cmd-401", "webhook")], {"webhook": channel}, ledger)
    assert result.summary.failed == 1 and len(api.requests) == 1 and result.sleeps == []
    assert result.dead[0]["reason"] == "HTTP 401"


def test_permanently_failing_endpoint_dead_letters_after_max_attempts(
        api: FakeApi, ledger: DeliveryLedger) -> None:
    api.answer((503, {"error": "down"}))
    channel = WebhookChannel(WebhookSettings(url=api.url, secret=SECRET))
    result = run([command("cmd-down", "webhook")], {"webhook": channel}, ledger, max_attempts=5)
    assert len(api.requests) == 5 and len(result.sleeps) == 4
    assert result.summary.failed == 1 and result.summary.dead_lettered == 1
    [dead] = result.dead
    assert dead["attempts"] == 5 and dead["reason"] == "HTTP 503 (after 5 attempts)"
    assert dead["command"]["command_id"] == "cmd-down"
    assert result.events[0]["event_id"] == "msg-cmd-down-failed"


def test_webhook_timeout_is_retryable(api: FakeApi) -> None:
    api.delay_s = 0.5
    channel = WebhookChannel(WebhookSettings(url=api.url, secret=SECRET, timeout_s=0.1))
    result = channel.send(command("cmd-slow", "webhook"), RenderedMessage(None, "t", None))
    assert result.status == "failed" and result.retryable


def test_webhook_429_honours_retry_after(api: FakeApi, ledger: DeliveryLedger) -> None:
    api.answer((429, {}, {"Retry-After": "7"}), (200, {}))
    channel = WebhookChannel(WebhookSettings(url=api.url, secret=SECRET))
    result = run([command("cmd-429", "webhook")], {"webhook": channel}, ledger)
    assert result.summary.delivered == 1 and result.sleeps == [7.0]


def test_push_posts_to_its_own_gateway_with_its_own_secret(api: FakeApi,
                                                           ledger: DeliveryLedger) -> None:
    api.respond = lambda r: (202, {}) if verified(r, "push-secret") else (401, {})
    channel = PushChannel(WebhookSettings(url=f"{api.url}/push", secret="push-secret"))
    result = run([command("cmd-push", "push"), command("cmd-gone", "push", customer_id="c9")],
                 {"push": channel}, ledger)
    assert result.summary.delivered == 2
    assert [r.json()["customer_id"] for r in api.requests] == ["c000182", "c9"]
    api.respond = lambda _r: (410, {})
    gone = channel.send(command("cmd-410", "push"), RenderedMessage(None, "t", None))
    assert gone.status == "bounced"


# -- Telegram -------------------------------------------------------------------------------

def telegram_api(api: FakeApi, outcomes: list[Reply]) -> None:
    def respond(request: Request) -> Reply:
        if request.path != f"/bot{TOKEN}/sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
    api.respond = respond


def tg_ok(message_id: int) -> Reply:
    return 200, {"ok": True, "result": {"message_id": message_id, "chat": {"id": 42},
                                        "date": 1741000000, "text": "Hello Leon"}}


def test_telegram_sends_and_reports_message_id(api: FakeApi, ledger: DeliveryLedger) -> None:
    telegram_api(api, [tg_ok(77)])
    channel = TelegramChannel(TelegramSettings(token=TOKEN, base_url=api.url,
                                               parse_mode="HTML"))
    result = run([command("cmd-tg", "telegram", "4242")], {"telegram": channel}, ledger)
    assert result.summary.delivered == 1
    assert api.requests[0].json() == {"chat_id": "4242", "text": "Hello Leon",
                                      "parse_mode": "HTML"}
    assert ledger.get("cmd-tg").provider_id == "77"


def test_telegram_blocked_user_bounces(api: FakeApi, ledger: DeliveryLedger) -> None:
    telegram_api(api, [(403, {"ok": False, "error_code": 403,
                              "description": "Forbidden: bot was blocked by the user"})])
    channel = TelegramChannel(TelegramSettings(token=TOKEN, base_url=api.url))
    result = run([command("cmd-blocked", "telegram", 4242)], {"telegram": channel}, ledger)
    assert result.summary.bounced == 1 and len(api.requests) == 1 and result.dead == []
    assert result.events[0]["event_id"] == "msg-cmd-blocked-bounced"
    assert "blocked" in ledger.get("cmd-blocked").detail


def test_telegram_rate_limit_waits_retry_after_capped(api: FakeApi,
                                                      ledger: DeliveryLedger) -> None:
    too_many = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
                "parameters": {"retry_after": 5}}
    very_many = {**too_many, "parameters": {"retry_after": 3600}}
    telegram_api(api, [(429, too_many), (429, very_many), tg_ok(1)])
    channel = TelegramChannel(TelegramSettings(token=TOKEN, base_url=api.url,
                                               max_retry_after_s=30))
    result = run([command("cmd-rl", "telegram", "4242")], {"telegram": channel}, ledger)
    assert result.summary.delivered == 1 and len(api.requests) == 3
    assert result.sleeps == [5.0, 30.0]


def test_telegram_without_chat_id_is_dead_lettered(api: FakeApi,
                                                   ledger: DeliveryLedger) -> None:
    telegram_api(api, [tg_ok(1)])
    channel = TelegramChannel(TelegramSettings(token=TOKEN, base_url=api.url))
    result = run([command("cmd-nochat", "telegram", None)], {"telegram": channel}, ledger)
    assert api.requests == []
    assert result.summary.failed == 1 and result.summary.dead_lettered == 1
    assert "Telegram chat id" in result.dead[0]["reason"]
    assert result.events[0]["status"] == "failed"


def test_telegram_token_never_appears_in_errors() -> None:
    settings = TelegramSettings(token=TOKEN, base_url=f"http://127.0.0.1:{free_port()}",
                                timeout_s=2)
    result = TelegramChannel(settings).send(command("c", "telegram", "1"),
                                            RenderedMessage(None, "t", None))
    assert result.retryable and TOKEN not in result.detail


# -- WhatsApp -------------------------------------------------------------------------------

def whatsapp_api(api: FakeApi, outcomes: list[Reply]) -> None:
    def respond(request: Request) -> Reply:
        if request.headers.get("Authorization") != "Bearer wa-token":
            return 401, {"error": {"code": 190, "message": "Invalid OAuth access token"}}
        return outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
    api.respond = respond


def wa_ok(wamid: str) -> Reply:
    return 200, {"messaging_product": "whatsapp",
                 "contacts": [{"input": "491701234567", "wa_id": "491701234567"}],
                 "messages": [{"id": wamid}]}


def wa_error(code: int, message: str, status: int = 400) -> Reply:
    return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                              "fbtrace_id": "AbC"}}


def whatsapp(api: FakeApi) -> WhatsAppChannel:
    return WhatsAppChannel(WhatsAppSettings(phone_number_id="1098", token="wa-token",
                                            base_url=api.url, api_version="v21.0"))


def test_whatsapp_sends_text_to_phone_digits(api: FakeApi, ledger: DeliveryLedger) -> None:
    whatsapp_api(api, [wa_ok("wamid.HBgM")])
    result = run([command("cmd-wa", "whatsapp", "+49 170 123-4567")],
                 {"whatsapp": whatsapp(api)}, ledger)
    assert result.summary.delivered == 1
    [request] = api.requests
    assert request.path == "/v21.0/1098/messages"
    assert request.json() == {"messaging_product": "whatsapp", "to": "491701234567",
                              "type": "text", "text": {"body": "Hello Leon"}}
    assert ledger.get("cmd-wa").provider_id == "wamid.HBgM"


def test_whatsapp_undeliverable_bounces_and_rate_limit_retries(
        api: FakeApi, ledger: DeliveryLedger) -> None:
    whatsapp_api(api, [wa_error(131026, "Message undeliverable")])
    first = run([command("cmd-wa-x", "whatsapp", "+491701234567")],
                {"whatsapp": whatsapp(api)}, ledger)
    assert first.summary.bounced == 1 and len(api.requests) == 1
    whatsapp_api(api, [wa_error(130429, "Rate limit hit", 429), wa_ok("wamid.2")])
    second = run([command("cmd-wa-y", "whatsapp", "+491701234567")],
                 {"whatsapp": whatsapp(api)}, ledger)
    assert second.summary.delivered == 1 and len(second.sleeps) == 1
    assert len(api.requests) == 3


# -- Viber ----------------------------------------------------------------------------------

VIBER_TOKEN = "vb-token-for-tests"


def viber_api(api: FakeApi, outcomes: list[Reply]) -> None:
    def respond(request: Request) -> Reply:
        if request.path != "/pa/send_message":
            return 404, {"status": 1, "status_message": "invalidUrl"}
        if request.headers.get("X-Viber-Auth-Token") != VIBER_TOKEN:
            return 200, {"status": 2, "status_message": "invalidAuthToken"}
        return outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
    api.respond = respond


def vb_ok(token: int) -> Reply:
    return 200, {"status": 0, "status_message": "ok", "message_token": token,
                 "chat_hostname": "SN-CHAT-01_"}


def viber(api: FakeApi, token: str = VIBER_TOKEN, **settings: Any) -> ViberChannel:
    return ViberChannel(ViberSettings(token=token, sender="Chain",
                                      url=f"{api.url}/pa/send_message", **settings))


def test_viber_sends_text_with_the_token_header(api: FakeApi, ledger: DeliveryLedger) -> None:
    viber_api(api, [vb_ok(5741311803571721087)])
    result = run([command("cmd-vb", "viber", "+49 170 123-4567"),
                  command("cmd-vb-id", "viber", "01234567890A=")],
                 {"viber": viber(api)}, ledger)
    assert result.summary.delivered == 2
    by_command = {r.json()["tracking_data"]: r for r in api.requests}
    assert by_command["cmd-vb"].json() == {
        "receiver": "491701234567", "min_api_version": 1, "sender": {"name": "Chain"},
        "tracking_data": "cmd-vb", "type": "text", "text": "Hello Leon"}
    assert by_command["cmd-vb-id"].json()["receiver"] == "01234567890A="
    assert ledger.get("cmd-vb").provider_id == "5741311803571721087"


def test_viber_unsubscribed_receiver_bounces_without_retry(api: FakeApi,
                                                           ledger: DeliveryLedger) -> None:
    viber_api(api, [(200, {"status": 6, "status_message": "receiverNotSubscribed"})])
    result = run([command("cmd-vb-gone", "viber", "+491701234567")], {"viber": viber(api)},
                 ledger)
    assert result.summary.bounced == 1 and len(api.requests) == 1 and result.dead == []
    assert result.events[0]["event_id"] == "msg-cmd-vb-gone-bounced"
    assert ledger.get("cmd-vb-gone").detail == "Viber 6: receiverNotSubscribed"


def test_viber_rate_limit_and_server_errors_are_retried(api: FakeApi,
                                                        ledger: DeliveryLedger) -> None:
    viber_api(api, [(200, {"status": 12, "status_message": "tooManyRequests"},
                     {"Retry-After": "7"}),
                    (503, {"status_message": "unavailable"}), vb_ok(9)])
    result = run([command("cmd-vb-rl", "viber", "+491701234567")], {"viber": viber(api)},
                 ledger)
    assert result.summary.delivered == 1 and len(api.requests) == 3
    assert result.sleeps[0] == 7.0 and len(result.sleeps) == 2


def test_viber_wrong_token_fails_without_retry_and_is_dead_lettered(
        api: FakeApi, ledger: DeliveryLedger) -> None:
    viber_api(api, [vb_ok(1)])
    result = run([command("cmd-vb-auth", "viber", "+491701234567")],
                 {"viber": viber(api, token="wrong")}, ledger)
    assert result.summary.failed == 1 and len(api.requests) == 1
    assert "invalidAuthToken" in result.dead[0]["reason"]
    assert "wrong" not in result.dead[0]["reason"]


def test_viber_without_receiver_is_dead_lettered_unsent(api: FakeApi,
                                                        ledger: DeliveryLedger) -> None:
    viber_api(api, [vb_ok(1)])
    result = run([command("cmd-vb-none", "viber", None)], {"viber": viber(api)}, ledger)
    assert api.requests == [] and result.summary.dead_lettered == 1
    assert "Viber user id or phone number" in result.dead[0]["reason"]


VIBER_JOURNEY = """\
journey: viber_thanks
version: 1
entry:
  event: visit
steps:
  - id: thanks
    actions:
      - send: viber
        template: newcomer_thanks
"""


def test_a_journey_sends_on_viber_from_the_engine_to_the_api(
        api: FakeApi, tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """A journey's `send: viber` goes through the dataflow (the address is the profile's
    phone) and `journeys deliver`'s config file to a real HTTP server."""
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "viber_thanks.yaml").write_text(VIBER_JOURNEY, encoding="utf-8")
    engine = Engine(tmp_path, redis_url, key_prefix, [str(journeys)])
    commands = engine.run([
        event("profile", "ann", at(-1), phone="+49 170 123-4567", name="Ann Weber"),
        event("profile", "bob", at(-1), email="bob@example.com"),  # no phone: unreachable
        visit("ann", at(0)), visit("bob", at(0)),
    ])
    assert [(c["customer_id"], c["channel"], c["to"]) for c in commands] == [
        ("ann", "viber", "+49 170 123-4567")]
    assert engine.stats()["viber_thanks@1|unreachable:thanks:viber"] == 1
    viber_api(api, [vb_ok(42)])
    config = tmp_path / "delivery.yaml"
    config.write_text(f"""
channels:
  viber: {{url: "{api.url}/pa/send_message", token_env: VIBER_TOKEN, sender: Chain}}
""", encoding="utf-8")
    folder = tmp_path / "templates" / "newcomer_thanks"
    folder.mkdir(parents=True)
    (folder / "en.txt").write_text("Thanks, {{ first_name }}!", encoding="utf-8")
    summary = deliver_file(tmp_path / "commands-1.jsonl", tmp_path / "events.jsonl",
                           tmp_path / "dead.jsonl", config, tmp_path / "templates",
                           tmp_path / "ledger.sqlite", environ={"VIBER_TOKEN": VIBER_TOKEN},
                           sleep=lambda _s: None)
    assert summary.delivered == 1
    [request] = api.requests
    assert request.json()["receiver"] == "491701234567"
    assert request.json()["text"] == "Thanks, Ann!"
    assert read_jsonl(tmp_path / "events.jsonl")[0]["status"] == "delivered"


# -- files, replay and the command line ---------------------------------------------------

def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_replaying_a_commands_file_sends_each_command_once(api: FakeApi,
                                                           tmp_path: Path) -> None:
    telegram_api(api, [tg_ok(5)])
    config = tmp_path / "delivery.yaml"
    config.write_text(f"""
channels:
  telegram: {{base_url: "{api.url}", token_env: TG_TOKEN}}
  webhook: {{url: "{api.url}/hook", secret_env: HOOK_SECRET}}
""", encoding="utf-8")
    api.respond = lambda r: tg_ok(5) if r.path.endswith("sendMessage") else (200, {})
    commands = tmp_path / "commands.jsonl"
    write_jsonl(commands, [command("r1", "telegram", "1"), command("r2", "webhook"),
                           command("r3", "telegram", None)])
    with commands.open("a") as extra:
        extra.write("{not json\n")
    paths = [commands, tmp_path / "events.jsonl", tmp_path / "dead.jsonl", config,
             tmp_path / "templates", tmp_path / "ledger.sqlite"]
    env = {"TG_TOKEN": TOKEN, "HOOK_SECRET": SECRET}
    first = deliver_file(*paths, renderer=FakeRenderer(), environ=env, sleep=lambda _s: None)
    second = deliver_file(*paths, renderer=FakeRenderer(), environ=env, sleep=lambda _s: None)
    assert (first.delivered, first.failed, first.invalid, first.dead_lettered) == (2, 1, 1, 2)
    assert first.held == 0
    assert (second.delivered, second.skipped) == (0, 2)
    assert sorted(r.path for r in api.requests) == sorted(["/hook", f"/bot{TOKEN}/sendMessage"])
    events = read_jsonl(tmp_path / "events.jsonl")
    # sent concurrently: the events of one batch come in any order
    assert sorted(e["event_id"] for e in events[:3]) == ["msg-r1-delivered",
                                                         "msg-r2-delivered", "msg-r3-failed"]
    assert len(events) == 4  # the undeliverable command is reported again on replay
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert {d["status"] for d in dead} == {"failed", "invalid"}


def test_command_line_renders_real_templates_and_sends_email(
        smtp: tuple[MailBox, SmtpSettings], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("connectors.delivery.templates")
    box, settings = smtp
    folder = tmp_path / "templates" / "newcomer_thanks"
    folder.mkdir(parents=True)
    (folder / "en.txt").write_text("Hello {{ first_name }}", encoding="utf-8")
    (folder / "en.subject.txt").write_text("Thanks, {{ first_name }}", encoding="utf-8")
    (folder / "en.html").write_text("<p>Hello {{ first_name }}</p>", encoding="utf-8")
    config = tmp_path / "delivery.json"
    config.write_text(json.dumps({"channels": {"email": {
        "host": "127.0.0.1", "port": settings.port, "from": "hello@chain.example"}}}))
    commands = tmp_path / "commands.jsonl"
    write_jsonl(commands, [command("cli-1", "email", "leon@example.com"),
                           command("cli-2", "email", "leon@example.com",
                                   send_at="2999-01-01T00:00:00Z")])
    argv = ["--commands", str(commands), "--config", str(config),
            "--templates", str(tmp_path / "templates"),
            "--events-out", str(tmp_path / "events.jsonl"),
            "--dead-letter", str(tmp_path / "dead.jsonl"),
            "--ledger", str(tmp_path / "ledger.sqlite")]
    assert deliver_command(argv) == 0
    out = capsys.readouterr().out
    assert "1 delivered" in out and "1 held until send_at" in out
    [mail] = box.messages
    assert mail["Subject"] == "Thanks, Leon"
    assert mail.get_body(("plain",)).get_content().strip() == "Hello Leon"
    assert "<p>Hello Leon</p>" in mail.get_body(("html",)).get_content()
    assert deliver_command(argv) == 0
    assert "2 skipped as already delivered or claimed" in capsys.readouterr().out
    assert len(box.messages) == 1
