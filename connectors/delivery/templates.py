"""Message templates: rendering a message command into subject, text and HTML.

Templates live under a root folder as `ROOT/<template>/<language>.<part>`, where part is
`subject.txt`, `txt` or `html`:

    store = TemplateStore(Path("examples/templates"))
    message = store.render(command)        # RenderedMessage(subject, text, html)

Templates are Jinja2, rendered in a sandbox with strict undefined variables. The
filters `date`, `datetime`, `time`, `money` and `number` format in the customer's
language and time zone, read from the command.
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import JourneysError
from journeys_dsl.channels import PARTS, SPECS

__all__ = [
    "OPTIONAL_PARTS",
    "PARTS",
    "REQUIRED_PARTS",
    "STANDARD_VARS",
    "VOUCHER_VARS",
    "MessageFormat",
    "RenderedMessage",
    "TemplateError",
    "TemplateStore",
    "build_environment",
    "language_chain",
    "normalize_language",
    "template_name_problem",
]

REQUIRED_PARTS: Mapping[str, tuple[str, ...]] = {spec.name: spec.required_parts
                                                 for spec in SPECS}
"""The parts each channel needs, in every language a template is written in (from the
channel registry, `journeys_dsl.channels`)."""
OPTIONAL_PARTS: Mapping[str, tuple[str, ...]] = {spec.name: spec.optional_parts
                                                 for spec in SPECS if spec.optional_parts}
"""Parts a channel renders when they exist."""
STANDARD_VARS: tuple[str, ...] = ("name", "first_name", "favourite_item", "points")
"""Variables every message command carries."""
VOUCHER_VARS: tuple[str, ...] = ("voucher_code", "voucher_expires_on", "offers")
"""Variables a message command carries once the enrollment has issued a voucher."""

_FORMAT_KEY = "@format"  # not a valid variable name, so it never clashes with vars
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")


class TemplateError(JourneysError, ValueError):
    """A template is missing, does not parse, or fails to render.

    `message` is the whole text, naming the template, language, part and line where
    they are known: "template 'newcomer_thanks' (de.txt, line 3): 'dish' is undefined".
    """

    code = "template"

    def __init__(self, reason: str, *, template: str, language: str | None = None,
                 part: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.template = template
        self.language = language
        self.part = part
        self.line = line
        self.message = f"template '{template}'{_where(language, part, line)}: {reason}"
        super().__init__(self.message)


def _where(language: str | None, part: str | None, line: int | None) -> str:
    bits: list[str] = []
    if part is not None:
        bits.append(f"{language}.{part}" if language else part)
    elif language:
        bits.append(language)
    if line is not None:
        bits.append(f"line {line}")
    return f" ({', '.join(bits)})" if bits else ""


@dataclass(frozen=True)
class RenderedMessage:
    """A rendered message; `subject` and `html` are None where the channel has none."""

    subject: str | None
    text: str
    html: str | None


@dataclass(frozen=True)
class MessageFormat:
    """The locale and time zone the formatting filters use."""

    locale: Locale
    timezone: tzinfo

    @classmethod
    def default(cls) -> MessageFormat:
        return cls(Locale.parse("en"), UTC)


# -- languages ---------------------------------------------------------------------------

def normalize_language(language: str) -> str:
    """`de_at` or `DE-at` as `de-AT`: language in lower case, a 2-letter region in upper.

    Raises `ValueError` for text that is not a language tag.
    """
    tag = language.strip().replace("_", "-")
    if not _LANGUAGE.match(tag):
        raise ValueError(f"'{language}' is not a language tag such as 'en' or 'de-AT'")
    head, *rest = tag.split("-")
    return "-".join([head.lower(), *(s.upper() if len(s) == 2 else s for s in rest)])


def language_chain(language: str | None, default: str) -> list[str]:
    """The languages to try, best first: `de-AT`, then `de`, then the default."""
    chain: list[str] = []
    if language:
        try:
            tag = normalize_language(language)
        except ValueError:
            tag = ""
        if tag:
            chain.append(tag)
            base = tag.split("-")[0]
            if base not in chain:
                chain.append(base)
    if default not in chain:
        chain.append(default)
    return chain


def _locale(language: str) -> Locale | None:
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return None


def _format_locale(requested: str | None, chosen: str) -> Locale:
    """The command's own locale when the template is in its language, else the template's."""
    for tag in language_chain(requested, chosen):
        if tag.split("-")[0] != chosen.split("-")[0]:
            continue
        locale = _locale(tag)
        if locale is not None:
            return locale
    return _locale(chosen) or Locale.parse("en")


def _timezone(name: Any) -> tzinfo:
    if name is None or name == "":
        return UTC
    if not isinstance(name, str):
        raise ValueError(f"timezone must be a name such as 'Europe/Berlin', not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone '{name}'") from exc


# -- filters -----------------------------------------------------------------------------

def _format_of(context: Context) -> MessageFormat:
    value = context.get(_FORMAT_KEY)
    return value if isinstance(value, MessageFormat) else MessageFormat.default()


def _to_datetime(value: Any, zone: tzinfo, what: str) -> datetime:
    """An aware datetime in `zone` from epoch ms, an ISO date or date-time, or a datetime."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: cannot read {value!r} as a time")
    if isinstance(value, int | float | Decimal):
        return datetime.fromtimestamp(float(value) / 1000, UTC).astimezone(zone)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(zone)
    if isinstance(value, date):
        return datetime.combine(value, time(0), zone)
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DATE.match(text):
            return datetime.combine(date.fromisoformat(text), time(0), zone)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return _to_datetime(parsed, zone, what)
    raise ValueError(f"{what}: cannot read {value!r} as a time; give epoch milliseconds, "
                     "'YYYY-MM-DD' or an ISO date-time")


def _to_date(value: Any, zone: tzinfo, what: str) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        return date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return _to_datetime(value, zone, what).date()


def _to_number(value: Any, what: str) -> int | float | Decimal:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise ValueError(f"{what}: cannot read {value!r} as a number")


@jinja2.pass_context
def date_filter(context: Context, value: Any, format: str = "medium") -> str:
    """`{{ voucher_expires_on | date("long") }}`: a date; short, medium, long, full or a pattern."""
    fmt = _format_of(context)
    return format_date(_to_date(value, fmt.timezone, "date"), format, locale=fmt.locale)


@jinja2.pass_context
def datetime_filter(context: Context, value: Any, format: str = "medium") -> str:
    """A date and time of day in the customer's time zone."""
    fmt = _format_of(context)
    moment = _to_datetime(value, fmt.timezone, "datetime")
    return format_datetime(moment, format, tzinfo=fmt.timezone, locale=fmt.locale)


@jinja2.pass_context
def time_filter(context: Context, value: Any, format: str = "short") -> str:
    """A time of day in the customer's time zone."""
    fmt = _format_of(context)
    moment = _to_datetime(value, fmt.timezone, "time")
    return format_time(moment, format, tzinfo=fmt.timezone, locale=fmt.locale)


@jinja2.pass_context
def money_filter(context: Context, value: Any, currency: str = "EUR") -> str:
    """`{{ 10 | money }}`: an amount with its currency, "€10.00" or "10,00 €"."""
    fmt = _format_of(context)
    return format_currency(_to_number(value, "money"), currency, locale=fmt.locale)


@jinja2.pass_context
def number_filter(context: Context, value: Any, digits: int | None = None) -> str:
    """A number with the locale's separators; `digits` fixes the decimals shown."""
    fmt = _format_of(context)
    number = _to_number(value, "number")
    pattern = None if digits is None else "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(number, pattern, locale=fmt.locale)


FILTERS: Mapping[str, Any] = {
    "date": date_filter,
    "datetime": datetime_filter,
    "time": time_filter,
    "money": money_filter,
    "number": number_filter,
}


def build_environment(root: Path) -> SandboxedEnvironment:
    """The sandboxed Jinja2 environment for templates under `root`."""
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(root), encoding="utf-8"),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


# -- the store ---------------------------------------------------------------------------

def template_name_problem(template: str) -> str | None:
    """Why `template` cannot name a template folder, or None when it can."""
    if not _TEMPLATE_NAME.match(template):
        return "a template name uses letters, digits, _, -, . and /"
    if any(segment in ("", ".", "..") for segment in template.split("/")):
        return "a template name cannot contain empty, '.' or '..' folders"
    return None


def _error_line(exc: BaseException, filename: str | None) -> int | None:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.lineno
    line = None
    if filename is not None:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == filename:
                line = frame.lineno
    return line


class TemplateStore:
    """Templates under `root`, compiled once and rendered per message command."""

    def __init__(self, root: Path, default_language: str = "en") -> None:
        self.root = Path(root)
        self.default_language = normalize_language(default_language)
        self.environment = build_environment(self.root)
        self._cache: dict[tuple[str, str, str], jinja2.Template | None] = {}
        self._languages: dict[tuple[str, str, str | None], str | None] = {}
        """Each (template, channel, language)'s choice: parts are compiled once per process
        (`load`), so which language has them is looked up on disk once too."""
        self._lock = threading.Lock()

    def has_folder(self, template: str) -> bool:
        """Whether `ROOT/<template>/` exists."""
        return template_name_problem(template) is None and (self.root / template).is_dir()

    def path(self, template: str, language: str, part: str) -> Path:
        """Where a part lives: `ROOT/<template>/<language>.<part>`."""
        return self.root / template / f"{language}.{part}"

    def exists(self, template: str, language: str, part: str) -> bool:
        return self.path(template, language, part).is_file()

    def load(self, template: str, language: str, part: str) -> jinja2.Template | None:
        """The compiled part, or None when its file does not exist.

        Raises `TemplateError` when the name is invalid or the part does not compile.
        """
        problem = template_name_problem(template)
        if problem is not None:
            raise TemplateError(problem, template=template)
        key = (template, language, part)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        compiled: jinja2.Template | None = None
        if self.exists(template, language, part):
            try:
                compiled = self.environment.get_template(f"{template}/{language}.{part}")
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"syntax error: {exc.message}", template=template,
                                    language=language, part=part, line=exc.lineno) from exc
        with self._lock:
            self._cache[key] = compiled
        return compiled

    def source(self, template: str, language: str, part: str) -> str | None:
        """The text of a part, or None when its file does not exist."""
        path = self.path(template, language, part)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def choose_language(self, template: str, channel: str, language: str | None) -> str | None:
        """The first language of the fallback chain with every part `channel` needs.

        None for a webhook without a text part in any language. Raises `TemplateError`
        when the template or its required parts are missing.
        """
        key = (template, channel, language)
        try:
            return self._languages[key]
        except KeyError:
            pass
        chosen = self._choose_language(template, channel, language)
        with self._lock:
            self._languages[key] = chosen
        return chosen

    def _choose_language(self, template: str, channel: str, language: str | None) -> str | None:
        problem = template_name_problem(template)
        if problem is not None:
            raise TemplateError(problem, template=template, language=language)
        if channel not in REQUIRED_PARTS:
            raise TemplateError(f"unknown channel '{channel}'; use one of "
                                f"{', '.join(REQUIRED_PARTS)}", template=template,
                                language=language)
        if not self.has_folder(template):
            raise TemplateError(f"no folder '{template}' in {self.root}", template=template,
                                language=language)
        chain = language_chain(language, self.default_language)
        needed = REQUIRED_PARTS[channel] or OPTIONAL_PARTS.get(channel, ())
        for tag in chain:
            if all(self.exists(template, tag, part) for part in needed):
                return tag
        if not REQUIRED_PARTS[channel]:
            return None
        wanted = ", ".join(f"{tag}.{part}" for tag in chain for part in needed)
        raise TemplateError(f"no language has every part {channel} needs (looked for "
                            f"{wanted})", template=template, language=language)

    def render(self, command: Mapping[str, Any]) -> RenderedMessage:
        """Render a message command's template; raises `TemplateError` with its context."""
        template = command.get("template")
        channel = command.get("channel")
        requested = command.get("language")
        if not isinstance(template, str) or not template:
            raise TemplateError("the command names no template", template=str(template))
        if not isinstance(channel, str):
            raise TemplateError("the command names no channel", template=template)
        if requested is not None and not isinstance(requested, str):
            raise TemplateError(f"language must be text, not {requested!r}", template=template)
        variables = command.get("vars") or {}
        if not isinstance(variables, Mapping):
            raise TemplateError("vars must be a mapping", template=template, language=requested)
        language = self.choose_language(template, channel, requested)
        if language is None:
            return RenderedMessage(None, "", None)
        try:
            zone = _timezone(command.get("timezone"))
        except ValueError as exc:
            raise TemplateError(str(exc), template=template, language=language) from exc
        scope = {**variables, _FORMAT_KEY: MessageFormat(_format_locale(requested, language),
                                                         zone)}
        parts = {part: self._render_part(template, language, part, scope) for part in PARTS
                 if part in (*REQUIRED_PARTS[channel], *OPTIONAL_PARTS.get(channel, ()))}
        subject = parts.get("subject.txt")
        return RenderedMessage(
            subject=" ".join(subject.split()) if subject is not None else None,
            text=parts.get("txt") or "",
            html=parts.get("html"),
        )

    def _render_part(self, template: str, language: str, part: str,
                     scope: Mapping[str, Any]) -> str | None:
        compiled = self.load(template, language, part)
        if compiled is None:
            return None
        try:
            return compiled.render(scope)
        except SecurityError as exc:
            raise TemplateError(f"blocked by the sandbox: {exc.message}", template=template,
                                language=language, part=part,
                                line=_error_line(exc, compiled.filename)) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(exc.message or type(exc).__name__, template=template,
                                language=language, part=part,
                                line=_error_line(exc, compiled.filename)) from exc
        except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
            raise TemplateError(str(exc), template=template, language=language, part=part,
                                line=_error_line(exc, compiled.filename)) from exc

