"""Configuration: onboardd.toml into frozen msgspec structs, overridable from the environment.

Every key can be overridden by ``ONBOARDD_<SECTION>_<KEY>``. Secrets (JWT secret, PII key,
Twilio token) may instead be read from a file named by the matching ``*_file`` key.
Twilio also honours the spec's own variables (``TWILIO_ACCOUNT_SID`` ...).
"""

from __future__ import annotations

import base64
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
import phonenumbers

from onboardd.simulator.settings import SimulatorSettings


class ConfigError(Exception):
    """A configuration problem, worded as one line naming the key and the problem."""


class Paths(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state_dir: str = "./var"


class Database(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = ""
    pool_min_size: int = 2
    pool_max_size: int = 10
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 30.0
    start_retry_s: float = 30.0


class Http(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = ""
    trust_forwarded: bool = False
    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 60.0
    body_timeout_s: float = 180.0


class Auth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jwt_secret: str = ""
    jwt_secret_file: str = ""
    jwt_public_key_file: str = ""
    jwt_private_key_file: str = ""
    token_ttl_s: int = 3600


class Pii(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str = ""
    key_file: str = ""
    key_id: str = "k1"
    retired_keys: str = ""
    hash_key: str = ""


class Twilio(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_sid: str = ""
    auth_token: str = ""
    auth_token_file: str = ""
    whatsapp_number: str = ""
    sms_number: str = ""
    api_base_url: str = "https://api.twilio.com"
    whatsapp_rate_per_s: float = 80.0
    sms_rate_per_s: float = 100.0
    max_in_flight: int = 64
    request_timeout_s: float = 10.0
    max_attempts: int = 3
    rate_limit_pause_s: float = 60.0


class Import(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_file_bytes: int = 5 * 1024 * 1024
    max_rows: int = 10_000
    imports_per_hour: int = 5
    chunk_rows: int = 1000
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    max_columns: int = 200
    uploads_per_hour: int = 30
    # What a blank or missing consent means: "assume" (may invite) or "require" (never invite
    # until the customer opts in).
    default_consent: Literal["assume", "require"] = "assume"


class Campaigns(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    claim_batch: int = 200
    resend_window_h: float = 24.0
    delivery_wait_s: float = 3600.0
    reconcile_interval_s: float = 300.0
    max_segments: int = 3
    lease_s: float = 120.0
    sweep_interval_s: float = 2.0
    due_poll_s: float = 5.0
    dispatch_poll_s: float = 1.0


class Offers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    invitation_expiry_days: int = 30
    match_poll_s: float = 5.0
    check_rate_per_min: int = 20
    phone_region: str = "IN"
    claim_misses_per_user: int = 5
    claim_misses_per_ip: int = 20
    claim_window_s: float = 900.0
    claim_lockout_s: float = 900.0
    claim_lockout_max_s: float = 86400.0
    claim_memory_s: float = 604800.0


class Pricing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one message costs, for the campaign builder's estimate (examples, not tariffs)."""

    sms_paisa_per_segment: int = 25
    whatsapp_paisa_per_message: int = 100


class Supervisor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    restart_max: int = 5
    restart_window_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    shutdown_grace_s: float = 10.0
    poll_interval_s: float = 5.0


class Metrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """GET /metrics: open (empty token) or only with ``Authorization: Bearer <token>``."""

    token: str = ""
    token_file: str = ""


class Log(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    paths: Paths = msgspec.field(default_factory=Paths)
    database: Database = msgspec.field(default_factory=Database)
    http: Http = msgspec.field(default_factory=Http)
    auth: Auth = msgspec.field(default_factory=Auth)
    pii: Pii = msgspec.field(default_factory=Pii)
    twilio: Twilio = msgspec.field(default_factory=Twilio)
    simulator: SimulatorSettings = msgspec.field(default_factory=SimulatorSettings)
    # "import" is a Python keyword: the attribute is import_, the TOML section stays [import].
    import_: Import = msgspec.field(default_factory=Import, name="import")
    campaigns: Campaigns = msgspec.field(default_factory=Campaigns)
    offers: Offers = msgspec.field(default_factory=Offers)
    pricing: Pricing = msgspec.field(default_factory=Pricing)
    supervisor: Supervisor = msgspec.field(default_factory=Supervisor)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    log: Log = msgspec.field(default_factory=Log)

    @property
    def embedded_db(self) -> bool:
        """True when no database URL is configured and onboardd runs its own Postgres."""
        return not self.database.url

    @property
    def simulated_twilio(self) -> bool:
        """True when no Twilio credentials are configured: the built-in simulator is used."""
        return not (self.twilio.account_sid and self.twilio.auth_token)


# The spec's own Twilio variables (spec §4.1), honoured next to ONBOARDD_TWILIO_*.
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


def _check_url(section: str, key: str, value: str, *, required: bool = False) -> None:
    if not value:
        if required:
            raise ConfigError(f"[{section}] {key}: must be set")
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"[{section}] {key}: '{value}' is not an http(s) URL")


def _validate(cfg: Config) -> None:
    """Reject values that type-check but cannot work."""
    positive = {
        ("twilio", "whatsapp_rate_per_s"): cfg.twilio.whatsapp_rate_per_s,
        ("twilio", "sms_rate_per_s"): cfg.twilio.sms_rate_per_s,
        ("twilio", "max_in_flight"): cfg.twilio.max_in_flight,
        ("twilio", "request_timeout_s"): cfg.twilio.request_timeout_s,
        ("twilio", "max_attempts"): cfg.twilio.max_attempts,
        ("database", "pool_min_size"): cfg.database.pool_min_size,
        ("database", "pool_max_size"): cfg.database.pool_max_size,
        ("database", "connect_timeout_s"): cfg.database.connect_timeout_s,
        ("import", "max_file_bytes"): cfg.import_.max_file_bytes,
        ("import", "max_rows"): cfg.import_.max_rows,
        ("import", "imports_per_hour"): cfg.import_.imports_per_hour,
        ("import", "chunk_rows"): cfg.import_.chunk_rows,
        ("import", "max_columns"): cfg.import_.max_columns,
        ("import", "uploads_per_hour"): cfg.import_.uploads_per_hour,
        ("campaigns", "claim_batch"): cfg.campaigns.claim_batch,
        ("offers", "invitation_expiry_days"): cfg.offers.invitation_expiry_days,
        ("offers", "match_poll_s"): cfg.offers.match_poll_s,
        ("offers", "claim_misses_per_user"): cfg.offers.claim_misses_per_user,
        ("offers", "claim_misses_per_ip"): cfg.offers.claim_misses_per_ip,
        ("offers", "claim_window_s"): cfg.offers.claim_window_s,
        ("offers", "claim_lockout_s"): cfg.offers.claim_lockout_s,
        ("supervisor", "restart_max"): cfg.supervisor.restart_max,
        ("supervisor", "restart_window_s"): cfg.supervisor.restart_window_s,
        ("supervisor", "shutdown_grace_s"): cfg.supervisor.shutdown_grace_s,
        ("supervisor", "poll_interval_s"): cfg.supervisor.poll_interval_s,
    }
    for (section, key), value in positive.items():
        if value <= 0:
            raise ConfigError(f"[{section}] {key}: must be greater than 0, got {value}")
    if cfg.database.pool_min_size > cfg.database.pool_max_size:
        raise ConfigError("[database] pool_min_size: must not exceed pool_max_size")
    if not 0 < cfg.http.port < 65536:
        raise ConfigError(f"[http] port: must be between 1 and 65535, got {cfg.http.port}")
    for key in ("header_timeout_s", "body_idle_timeout_s", "body_timeout_s"):
        if getattr(cfg.http, key) <= 0:
            raise ConfigError(f"[http] {key}: must be greater than 0, got "
                              f"{getattr(cfg.http, key)}")
    _check_url("http", "public_base_url", cfg.http.public_base_url)
    _check_url("twilio", "api_base_url", cfg.twilio.api_base_url, required=True)
    if cfg.database.url and not cfg.database.url.startswith(("postgres://", "postgresql://")):
        raise ConfigError(
            "[database] url: must start with postgresql:// (or be empty for embedded)")
    if cfg.pii.key:
        decode_key("pii", "key", cfg.pii.key)
    _check_offers(cfg.offers)
    for key in ("sms_paisa_per_segment", "whatsapp_paisa_per_message"):
        if getattr(cfg.pricing, key) < 0:
            raise ConfigError(f"[pricing] {key}: must be 0 or more (paisa), got "
                              f"{getattr(cfg.pricing, key)}")
    _check_twilio_pair(cfg.twilio)
    if cfg.simulator.auth_token == PUBLIC_SIMULATOR_TOKEN:
        raise ConfigError(f"[simulator] auth_token: '{PUBLIC_SIMULATOR_TOKEN}' is public; leave it "
                          "empty for a random token kept under [paths] state_dir")


# The simulator's former built-in token: published, so anybody could sign webhooks with it.
PUBLIC_SIMULATOR_TOKEN = "simulator-auth-token"  # noqa: S105 - refused, never used


def _check_twilio_pair(twilio: Twilio) -> None:
    """A half-configured account (SID without token, or the reverse) names the missing key."""
    if twilio.account_sid and not twilio.auth_token:
        raise ConfigError(
            "[twilio] auth_token: missing while account_sid is set; set TWILIO_AUTH_TOKEN (or "
            "[twilio] auth_token / auth_token_file), or unset account_sid to use the simulator")
    if twilio.auth_token and not twilio.account_sid:
        raise ConfigError(
            "[twilio] account_sid: missing while auth_token is set; set TWILIO_ACCOUNT_SID (or "
            "[twilio] account_sid), or unset auth_token to use the simulator")


def _check_offers(offers: Offers) -> None:
    if offers.phone_region and offers.phone_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"[offers] phone_region: '{offers.phone_region}' is not a region code "
                          "such as IN or US (or \"\" to read no national number)")
    if offers.claim_lockout_max_s < offers.claim_lockout_s:
        raise ConfigError("[offers] claim_lockout_max_s: must be at least claim_lockout_s")
    if offers.claim_memory_s <= offers.claim_lockout_max_s:
        raise ConfigError("[offers] claim_memory_s: must exceed claim_lockout_max_s, or a "
                          "lockout would be forgotten as it ends")


def decode_key(section: str, key: str, value: str) -> bytes:
    """A 32-byte key given as base64; a ConfigError naming the key otherwise."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise ConfigError(f"[{section}] {key}: not valid base64") from None
    if len(raw) != 32:
        raise ConfigError(f"[{section}] {key}: must decode to 32 bytes, got {len(raw)}")
    return raw


def _describe_validation_error(exc: msgspec.ValidationError) -> str:
    """Turn msgspec's 'problem - at `$.http.port`' into '[http] port: problem'."""
    message, _, where = str(exc).partition(" - at `$.")
    path = [part for part in where.rstrip("`").split(".") if part]
    if message.startswith("Object contains unknown field"):
        name = message.split("`")[1]
        if not path:
            return f"[{name}]: unknown section"
        return f"[{path[0]}] {name}: unknown key"
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
    _validate(cfg)
    return cfg


def default_path() -> Path | None:
    """The onboardd.toml in the working directory, if there is one."""
    candidate = Path("onboardd.toml")
    return candidate if candidate.exists() else None
