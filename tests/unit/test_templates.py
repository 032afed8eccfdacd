"""Message templates: rendering, locale formatting, the sandbox, and the journey check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.delivery.template_check import check_templates
from connectors.delivery.templates import (
    RenderedMessage,
    TemplateError,
    TemplateStore,
    language_chain,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_JOURNEYS = REPO / "examples" / "journeys"
EXAMPLE_TEMPLATES = REPO / "examples" / "templates"
EXPIRES_AT = 1_742_212_800_000  # 2025-03-17T12:00:00Z
LATE_EVENING = 1_742_167_800_000  # 2025-03-16T23:30:00Z: already the 17th in Berlin


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def command(template: str = "t", channel: str = "sms", language: str | None = "en",
            timezone: str | None = "Europe/Berlin", **variables: Any) -> dict[str, Any]:
    return {"command_id": "c1", "customer_id": "c000182", "journey": "j", "version": 1,
            "step": "s", "channel": channel, "template": template, "language": language,
            "to": None, "timezone": timezone, "vars": variables,
            "send_at": "2025-03-03T10:00:00.000Z"}


def render_text(tmp_path: Path, source: str, language: str | None = "en",
                **variables: Any) -> str:
    store = TemplateStore(write(tmp_path, {"t/en.txt": source, "t/de.txt": source}))
    return store.render(command(language=language, **variables)).text


# -- rendering and language fallback ----------------------------------------------------

@pytest.fixture
def greetings(tmp_path: Path) -> TemplateStore:
    return TemplateStore(write(tmp_path, {
        "hello/en.subject.txt": "Hello {{ first_name }}\n",
        "hello/en.txt": "Hi {{ first_name }}, you have {{ points | number }} points.\n",
        "hello/en.html": "<p>Hi {{ first_name }}</p>\n",
        "hello/de.subject.txt": "Hallo {{ first_name }}\n",
        "hello/de.txt": "Hallo {{ first_name }}, du hast {{ points | number }} Punkte.\n",
    }))


def test_renders_an_email_in_the_command_language(greetings: TemplateStore) -> None:
    message = greetings.render(command("hello", "email", "de", first_name="Leon", points=1500))
    assert message == RenderedMessage("Hallo Leon", "Hallo Leon, du hast 1.500 Punkte.", None)


def test_renders_subject_text_and_html_in_english(greetings: TemplateStore) -> None:
    message = greetings.render(command("hello", "email", "en", first_name="Ann", points=1500))
    assert message == RenderedMessage("Hello Ann", "Hi Ann, you have 1,500 points.",
                                      "<p>Hi Ann</p>")


@pytest.mark.parametrize(("language", "expected"), [
    ("de-AT", "Hallo Leon"), ("de_at", "Hallo Leon"), ("fr", "Hello Leon"),
    (None, "Hello Leon"), ("not a language!", "Hello Leon"),
])
def test_language_falls_back_to_the_base_then_the_default(
        greetings: TemplateStore, language: str | None, expected: str) -> None:
    message = greetings.render(command("hello", "email", language, first_name="Leon", points=1))
    assert message.subject == expected


def test_language_chain() -> None:
    assert language_chain("de-AT", "en") == ["de-AT", "de", "en"]
    assert language_chain("EN", "en") == ["en"]
    assert language_chain(None, "de") == ["de"]


def test_default_language_is_configurable(greetings: TemplateStore, tmp_path: Path) -> None:
    store = TemplateStore(tmp_path, default_language="de")
    assert store.render(command("hello", "email", "fr", first_name="Leon", points=1)).subject \
        == "Hallo Leon"


def test_a_language_needs_every_part_of_the_channel(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {
        "offer/de.txt": "Nur Text\n",  # no de.subject.txt: German is incomplete for email
        "offer/en.subject.txt": "Subject\n", "offer/en.txt": "Text\n",
    }))
    assert store.render(command("offer", "email", "de")) == RenderedMessage("Subject", "Text",
                                                                             None)
    assert store.render(command("offer", "sms", "de")).text == "Nur Text"


def test_subject_is_one_line(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.subject.txt": "  A\n  subject  \n",
                                           "t/en.txt": "body"}))
    assert store.render(command(channel="email")).subject == "A subject"


def test_webhook_needs_no_template_part(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"hook/README": "", "body/en.txt": "{{ points }}"}))
    assert store.render(command("hook", "webhook")) == RenderedMessage(None, "", None)
    assert store.render(command("body", "webhook", points=3)) == RenderedMessage(None, "3", None)


def test_missing_template_folder_and_parts_raise(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": "text"}))
    with pytest.raises(TemplateError, match="no folder 'nope'") as missing:
        store.render(command("nope"))
    assert missing.value.template == "nope"
    with pytest.raises(TemplateError, match=r"looked for en\.subject\.txt, en\.txt"):
        store.render(command(channel="email"))
    with pytest.raises(TemplateError, match="unknown channel 'fax'"):
        store.render(command(channel="fax"))
    with pytest.raises(TemplateError, match=r"'\.\.' folders"):
        store.render(command("t/../t"))


def test_templates_are_cached(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": "first"}))
    assert store.render(command()).text == "first"
    write(tmp_path, {"t/en.txt": "second"})
    assert store.render(command()).text == "first"
    assert TemplateStore(tmp_path).render(command()).text == "second"


# -- formatting ---------------------------------------------------------------------------

@pytest.mark.parametrize(("language", "source", "expected"), [
    ("de", '{{ voucher_expires_on | date("long") }}', "17. März 2025"),
    ("en", '{{ voucher_expires_on | date("long") }}', "March 17, 2025"),
    ("de", "{{ voucher_expires_on | date }}", "17.03.2025"),
    ("en", '{{ voucher_expires_on | date("short") }}', "3/17/25"),
    ("de", '{{ voucher_expires_on | date("EEEE, d. MMMM") }}', "Montag, 17. März"),
    ("de", '{{ expires_at | date("long") }}', "17. März 2025"),
    ("de", '{{ late | date("long") }}', "17. März 2025"),
    ("en", '{{ "2025-03-16T23:30:00Z" | date }}', "Mar 17, 2025"),
    ("de", "{{ late | time }}", "00:30"),
    ("en", '{{ late | time("h:mm a") }}', "12:30 AM"),
    ("de", '{{ expires_at | datetime("short") }}', "17.03.25, 13:00"),
    ("de", "{{ 10 | money }}", "10,00\xa0€"),
    ("en", "{{ 10 | money }}", "€10.00"),
    ("en", '{{ 4.5 | money("USD") }}', "$4.50"),
    ("de", '{{ "12.5" | money }}', "12,50\xa0€"),
    ("de", "{{ 1234567.891 | number }}", "1.234.567,891"),
    ("en", "{{ 1500 | number(2) }}", "1,500.00"),
    ("de-AT", '{{ "2025-01-17" | date("long") }}', "17. Jänner 2025"),
])
def test_filters_format_in_the_customer_locale_and_timezone(
        tmp_path: Path, language: str, source: str, expected: str) -> None:
    text = render_text(tmp_path, source, language, voucher_expires_on="2025-03-17",
                       expires_at=EXPIRES_AT, late=LATE_EVENING)
    assert text == expected


def test_a_fallback_template_formats_in_its_own_language(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": '{{ d | date("long") }}'}))
    assert store.render(command(language="de", d="2025-03-17")).text == "March 17, 2025"


def test_without_a_timezone_times_are_utc(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": "{{ late | time('HH:mm') }}"}))
    assert store.render(command(timezone=None, late=LATE_EVENING)).text == "23:30"
    with pytest.raises(TemplateError, match="unknown timezone 'Mars/Olympus'"):
        store.render(command(timezone="Mars/Olympus", late=LATE_EVENING))


@pytest.mark.parametrize(("source", "message"), [
    ('{{ "tomorrow" | date }}', "date: cannot read 'tomorrow' as a time; give epoch "
                                "milliseconds, 'YYYY-MM-DD' or an ISO date-time"),
    ("{{ none | money }}", "money: cannot read None as a number"),
    ('{{ "many" | number }}', "number: cannot read 'many' as a number"),
])
def test_bad_filter_input_is_a_template_error(tmp_path: Path, source: str, message: str) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": f"line one\n{source}\n"}))
    with pytest.raises(TemplateError) as error:
        store.render(command(none=None))
    assert error.value.message == f"template 't' (en.txt, line 2): {message}"


# -- strictness, escaping and the sandbox -------------------------------------------------

def test_a_missing_variable_raises_and_never_renders_blank(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/de.txt": "Hallo {{ first_name }},\n\n{{ dish }}\n"}))
    with pytest.raises(TemplateError) as error:
        store.render(command(language="de", first_name="Leon"))
    exc = error.value
    assert (exc.template, exc.language, exc.part, exc.line) == ("t", "de", "txt", 3)
    assert exc.message == "template 't' (de.txt, line 3): 'dish' is undefined"
    assert isinstance(exc, ValueError)


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": "ok\n{% if points %}\nno end\n"}))
    with pytest.raises(TemplateError, match=r"^template 't' \(en\.txt, line 3\): syntax error"):
        store.render(command(points=1))


def test_html_is_autoescaped_and_text_is_not(tmp_path: Path) -> None:
    store = TemplateStore(write(tmp_path, {
        "t/en.subject.txt": "{{ dish }}", "t/en.txt": "{{ dish }}",
        "t/en.html": "<p>{{ dish }}</p>",
    }))
    message = store.render(command(channel="email", dish="Fish & <b>chips</b>"))
    assert message.subject == "Fish & <b>chips</b>"
    assert message.text == "Fish & <b>chips</b>"
    assert message.html == "<p>Fish &amp; &lt;b&gt;chips&lt;/b&gt;</p>"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ offers.__init__.__globals__ }}",
])
def test_the_sandbox_blocks_internal_attributes(tmp_path: Path, source: str) -> None:
    store = TemplateStore(write(tmp_path, {"t/en.txt": source}))
    with pytest.raises(TemplateError, match="blocked by the sandbox") as error:
        store.render(command(offers={}))
    assert error.value.line == 1


# -- checking journeys against templates --------------------------------------------------

JOURNEY = """\
journey: demo
version: 1
entry:
  event: visit
offers:
  treat:
    description: A treat
    valid_for: 7d
steps:
  - id: first
    actions:
      - send: email
        template: nowhere
      - send: sms
        template: greet
        vars:
          dish: "customer.favourite_item"
      - send: email
        template: early_voucher
  - id: second
    at: day 1
    actions:
      - issue: treat
      -   send: email
          template: treat
          vars: {code: "offer.treat.code"}
      - send: push
        template: broken
"""

TEMPLATES = {
    "greet/en.txt": "{% set greeting = 'Hi' %}{{ greeting }} {{ first_name }}, {{ dish }}\n",
    "greet/de.txt": "Hallo {{ first_name }}, {{ dessert }} und {{ dish }}\n",
    "early_voucher/en.subject.txt": "For you\n",
    "early_voucher/en.txt": "{{ voucher_code }}\n",
    "treat/en.subject.txt": "A treat\n",
    "treat/en.txt": "{% for id, offer in offers.items() %}{{ loop.index }} {{ offer.code }}"
                    "{% endfor %} {{ code }} {{ voucher_expires_on | date }}\n",
    "treat/en.html": "<p>{{ venue }}</p>\n",
    "broken/en.txt": "line 1\n{% if points %}\n",
    "broken/de.txt": "{{ points | shout }}\n",
}


@pytest.fixture
def journey_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(JOURNEY, encoding="utf-8")
    write(tmp_path / "templates", TEMPLATES)
    return path


def test_check_reports_every_problem_kind_at_the_send_action(journey_file: Path) -> None:
    problems = check_templates([journey_file], journey_file.parent / "templates", ("en", "de"))
    f = str(journey_file)
    root = journey_file.parent / "templates"
    assert [str(p) for p in problems] == [
        f"{f}:12:9: template 'nowhere' not found: there is no folder 'nowhere' in {root} "
        "(at steps[0].actions[0])",
        f"{f}:14:9: template 'greet' (de.txt) uses 'dessert', which this send action does "
        "not provide; add it under vars: (at steps[0].actions[1])",
        f"{f}:18:9: template 'early_voucher' (en.txt) uses 'voucher_code', which is only set "
        "once the journey has issued a voucher; add an '- issue:' action before this send "
        "action (at steps[0].actions[2])",
        f"{f}:18:9: template 'early_voucher' has no de.subject.txt, which email messages "
        f"need; create {root / 'early_voucher' / 'de.subject.txt'} (at steps[0].actions[2])",
        f"{f}:18:9: template 'early_voucher' has no de.txt, which email messages need; "
        f"create {root / 'early_voucher' / 'de.txt'} (at steps[0].actions[2])",
        f"{f}:24:11: template 'treat' (en.html) uses 'venue', which this send action does not "
        "provide; add it under vars: (at steps[1].actions[1])",
        f"{f}:24:11: template 'treat' has no de.subject.txt, which email messages need; "
        f"create {root / 'treat' / 'de.subject.txt'} (at steps[1].actions[1])",
        f"{f}:24:11: template 'treat' has no de.txt, which email messages need; "
        f"create {root / 'treat' / 'de.txt'} (at steps[1].actions[1])",
        f"{f}:27:9: template 'broken' (de.txt, line 1): syntax error: No filter named "
        "'shout'. (at steps[1].actions[2])",
        f"{f}:27:9: template 'broken' (en.txt, line 2): syntax error: Unexpected end of "
        "template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. "
        "The innermost block that needs to be closed is 'if'. (at steps[1].actions[2])",
    ]


def test_check_only_asks_for_the_listed_languages(journey_file: Path) -> None:
    problems = check_templates([journey_file.parent], journey_file.parent / "templates")
    assert not any("de." in p.message for p in problems)
    assert len(problems) == 4


def test_check_passes_on_journey_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("journey: bad\nversion: 1\nsteps: []\n", encoding="utf-8")
    problems = check_templates([path], tmp_path)
    assert problems and all(p.file == str(path) for p in problems)


def test_check_rejects_a_journey_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_templates([tmp_path / "missing.yaml"], tmp_path)


def test_example_templates_cover_every_example_send_action() -> None:
    assert check_templates([EXAMPLE_JOURNEYS], EXAMPLE_TEMPLATES, ("en", "de")) == []


def test_example_templates_render() -> None:
    store = TemplateStore(EXAMPLE_TEMPLATES)
    message = store.render(command(
        "newcomer_thanks", "email", "de", name="Leon Mueller", first_name="Leon",
        favourite_item="espresso", points=500, voucher_code="DESSERT-7K3Q9ZP2AB",
        voucher_expires_on="2025-03-17", offers={}, code="DESSERT-7K3Q9ZP2AB",
        expires_at=EXPIRES_AT))
    assert message.subject == "Danke, Leon \u2013 das Dessert geht auf uns"
    assert "DESSERT-7K3Q9ZP2AB" in message.text and "17. März 2025" in message.text
    assert message.html is not None and "<strong>DESSERT-7K3Q9ZP2AB</strong>" in message.html
    sms = store.render(command("lost_regular_last_reminder", "sms", "en", name=None,
                               first_name=None, favourite_item=None, points=0, code="TEN-1",
                               voucher_code="TEN-1", voucher_expires_on="2025-03-17",
                               offers={}))
    assert sms.text.startswith("Hi, your €10.00 off ends on Mar 17, 2025. Code TEN-1.")
