"""Reading one section of the delivery config: typed values, secrets from the environment,
and errors that name the file and the full key.

A connector module reads its channel's settings through a `SettingsSection`:

    def read_settings(s: SettingsSection) -> TelegramSettings:
        return TelegramSettings(token=str(s.secret("token")), base_url=s.url("base_url", URL))

`secret("token")` reads the environment variable named by `token_env`: secrets are never
written in the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import JourneysError

__all__ = ["DeliveryConfigError", "SettingsSection", "settings_section"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeliveryConfigError(JourneysError, ValueError):
    """A delivery config that cannot be used; names the file and the key."""

    code = "delivery_config"

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason, file=self.path)
        self.key = key
        """The setting, such as `channels.email.host` (not a customer key)."""

    def context(self) -> str:
        return self.path


class SettingsSection:
    """Typed reads from one mapping of the file, with errors naming the full key."""

    def __init__(self, data: Mapping[str, Any], key: str, path: str,
                 environ: Mapping[str, str]) -> None:
        self.data = data
        self.key = key
        self.path = path
        self.environ = environ
        self.used: set[str] = set()

    def error(self, name: str, reason: str) -> DeliveryConfigError:
        return DeliveryConfigError(self.path, f"{self.key}.{name}" if name else self.key, reason)

    def _get(self, name: str, required: bool) -> Any:
        self.used.add(name)
        value = self.data.get(name)
        if value is None and required:
            raise self.error(name, "is required")
        return value

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be non-empty text, not {value!r}")
        return value.strip()

    def number(self, name: str, default: float, *, minimum: float = 0.0,
               integer: bool = False) -> Any:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                integer and not isinstance(value, int)):
            kind = "a whole number" if integer else "a number"
            raise self.error(name, f"must be {kind}, not {value!r}")
        if not math.isfinite(value) or value < minimum:
            raise self.error(name, f"must be at least {minimum:g}, not {value!r}")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in options:
            raise self.error(name, f"must be one of {', '.join(options)}, not {value!r}")
        return str(value)

    def url(self, name: str, default: str | None = None) -> str:
        value = self.text(name, default, required=default is None)
        if not re.match(r"^https?://[^\s/]+", value):
            raise self.error(name, f"must be an http:// or https:// URL, not {value!r}")
        return str(value)

    def secret(self, name: str, *, required: bool = True) -> str | None:
        """The value of the environment variable named by `<name>_env`."""
        if name in self.data:
            self.used.add(name)
            raise self.error(name, f"secrets are not written in the file; put it in an "
                                   f"environment variable and name that with {name}_env")
        variable = self.text(f"{name}_env", required=required)
        if variable is None:
            return None
        if not _ENV_NAME.match(variable):
            raise self.error(f"{name}_env", f"{variable!r} is not an environment variable name")
        value = self.environ.get(variable)
        if not value:
            raise self.error(f"{name}_env", f"environment variable {variable} is not set")
        return value

    def headers(self, name: str) -> dict[str, str]:
        value = self._get(name, False)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()):
            raise self.error(name, "must map header names to text")
        return {k: str(v) for k, v in value.items()}

    def check_unknown(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise self.error(str(name), "is not a known setting")


def settings_section(data: Any, key: str, path: str,
                     environ: Mapping[str, str]) -> SettingsSection:
    """A section over `data`, which must be a mapping; `key` is its place in the file."""
    if not isinstance(data, Mapping):
        raise DeliveryConfigError(path, key, f"must be a mapping, not {type(data).__name__}")
    return SettingsSection(data, key, path, environ)
