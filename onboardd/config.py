"""Configuration: onboardd.toml into frozen msgspec structs, overridable from the environment.

Every key can be overridden by ``ONBOARDD_<SECTION>_<KEY>``. Secrets (JWT secret, PII key,
Twilio token) may instead be read from a file named by the matching ``*_file`` key.
Twilio also honours the spec's own variables (``TWILIO_ACCOUNT_SID`` ...).
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from onboardd.config_checks import PUBLIC_SIMULATOR_TOKEN as PUBLIC_SIMULATOR_TOKEN
from onboardd.config_checks import ConfigError as ConfigError
from onboardd.config_checks import decode_key as decode_key
from onboardd.config_checks import validate
from onboardd.config_sections import Auth as Auth
from onboardd.config_sections import Campaigns as Campaigns
from onboardd.config_sections import Config as Config
from onboardd.config_sections import Database as Database
from onboardd.config_sections import Http as Http
from onboardd.config_sections import Import as Import
from onboardd.config_sections import Log as Log
from onboardd.config_sections import Metrics as Metrics
from onboardd.config_sections import Offers as Offers
from onboardd.config_sections import Paths as Paths
from onboardd.config_sections import Pii as Pii
from onboardd.config_sections import Pricing as Pricing
from onboardd.config_sections import Supervisor as Supervisor
from onboardd.config_sections import Twilio as Twilio

_SPEC_ENV = {
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "TWILIO_WHATSAPP_NUMBER": ("twilio", "whatsapp_number"),
    "TWILIO_SMS_NUMBER": ("twilio", "sms_number"),
}

# Secret keys that may name a file holding the value instead of the value itself.
_SECRET_FILES = {
    ("auth", "jwt_secret"): "jwt_secret_file",
    ("pii", "key"): "key_file",
    ("twilio", "auth_token"): "auth_token_file",
    ("metrics", "token"): "token_file",
}


def _section_fields() -> dict[str, tuple[str, type[msgspec.Struct]]]:
    """Map TOML section name -> (attribute name, struct type)."""
    out: dict[str, tuple[str, type[msgspec.Struct]]] = {}
    for field in msgspec.structs.fields(Config):
        out[field.encode_name] = (field.name, typing.cast(type[msgspec.Struct], field.type))
    return out


def _coerce_env(raw: str, annotation: Any) -> Any:
    """Turn an environment string into the JSON-ish value the field's type expects."""
    text = raw.strip()
    origin = typing.get_origin(annotation)
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            return text
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            return text
    if origin in (list, dict):
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Overlay ONBOARDD_<SECTION>_<KEY> and the spec's TWILIO_* variables onto raw TOML data."""
    sections = _section_fields()
    for name, (section_key, key) in _SPEC_ENV.items():
        if name in env:
            data.setdefault(section_key, {})[key] = env[name]
    for env_name, raw in env.items():
        if not env_name.startswith("ONBOARDD_"):
            continue
        rest = env_name[len("ONBOARDD_") :].lower()
        for section, (_attr, struct_type) in sections.items():
            prefix = section + "_"
            if not rest.startswith(prefix):
                continue
            key = rest[len(prefix) :]
            hints = typing.get_type_hints(struct_type)
            if key not in hints:
                raise ConfigError(f"{env_name}: unknown key '{key}' in section [{section}]")
            data.setdefault(section, {})[key] = _coerce_env(raw, hints[key])
            break


def _read_secret_files(data: dict[str, Any]) -> None:
    """Fill secrets from their *_file keys when the value itself is not given."""
    for (section, key), file_key in _SECRET_FILES.items():
        sect = data.get(section, {})
        path = sect.get(file_key)
        if path and not sect.get(key):
            try:
                sect[key] = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"[{section}] {file_key}: cannot read {path}: {exc.strerror}"
                ) from None


# Keys that moved to another section: the error names the new place.
_MOVED_KEYS = {("offers", "check_rate_per_min"): "[ratelimit] check_per_min"}


def _describe_validation_error(exc: msgspec.ValidationError) -> str:
    """Turn msgspec's 'problem - at `$.http.port`' into '[http] port: problem'."""
    message, _, where = str(exc).partition(" - at `$.")
    path = [part for part in where.rstrip("`").split(".") if part]
    if message.startswith("Object contains unknown field"):
        name = message.split("`")[1]
        if not path:
            return f"[{name}]: unknown section"
        moved = _MOVED_KEYS.get((path[0], name))
        return f"[{path[0]}] {name}: unknown key" + (f" (moved: use {moved})" if moved else "")
    if len(path) >= 2:
        return f"[{path[0]}] {'.'.join(path[1:])}: {message}"
    if path:
        return f"[{path[0]}] {message}"
    return f"config: {message}"


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration; raise ConfigError with one clear line."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file}: invalid TOML: {exc}") from None
    _apply_env(data, env)
    _read_secret_files(data)
    try:
        cfg = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None
    validate(cfg)
    return cfg


def default_path() -> Path | None:
    """The onboardd.toml in the working directory, if there is one."""
    candidate = Path("onboardd.toml")
    return candidate if candidate.exists() else None
