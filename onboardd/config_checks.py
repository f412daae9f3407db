"""Configuration checks: values that type-check but cannot work, each refused with one line
naming the key and the problem (``ConfigError``). ``onboardd.config.load`` runs ``validate``
on every configuration it builds."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import phonenumbers

from onboardd.config_sections import Auth, Campaigns, Config, Offers, RateLimit, Twilio
from onboardd.domain.sending_hours import SendingHoursError


class ConfigError(Exception):
    """A configuration problem, worded as one line naming the key and the problem."""


def _check_url(section: str, key: str, value: str, *, required: bool = False) -> None:
    if not value:
        if required:
            raise ConfigError(f"[{section}] {key}: must be set")
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"[{section}] {key}: '{value}' is not an http(s) URL")


def validate(cfg: Config) -> None:
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
    _check_auth(cfg.auth)
    _check_ratelimit(cfg.ratelimit)
    _check_sending_window(cfg.campaigns)
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


def _check_auth(auth: Auth) -> None:
    if not 0 <= auth.leeway_s <= 3600:
        raise ConfigError(f"[auth] leeway_s: must be between 0 and 3600 seconds (a clock skew), "
                          f"got {auth.leeway_s}")
    if auth.max_token_age_s < 0:
        raise ConfigError(f"[auth] max_token_age_s: must be 0 (no limit) or more seconds, got "
                          f"{auth.max_token_age_s}")
    for key in ("issuer", "audience"):
        value = getattr(auth, key)
        if value != value.strip():
            raise ConfigError(f"[auth] {key}: has leading or trailing spaces; tokens are "
                              "compared exactly")


def _check_ratelimit(limits: RateLimit) -> None:
    """Rates are 0 (that budget off) or more; bursts and the check's minute at least 1."""
    for area in ("admin", "admin_ip", "mobile", "mobile_ip", "webhook_ip"):
        rate = getattr(limits, f"{area}_per_s")
        if rate < 0:
            raise ConfigError(f"[ratelimit] {area}_per_s: must be 0 (no limit) or more requests "
                              f"a second, got {rate}")
        burst = getattr(limits, f"{area}_burst")
        if burst < 1:
            raise ConfigError(f"[ratelimit] {area}_burst: must be at least 1 request, got "
                              f"{burst}")
    if limits.check_per_min < 0:
        raise ConfigError(f"[ratelimit] check_per_min: must be 0 (no limit) or more checks a "
                          f"minute, got {limits.check_per_min}")
    if limits.max_keys < 1:
        raise ConfigError(f"[ratelimit] max_keys: must be at least 1, got {limits.max_keys}")


def _check_sending_window(campaigns: Campaigns) -> None:
    try:
        campaigns.sending_hours()
    except SendingHoursError as exc:
        key = "sending_window_start" if exc.field.endswith(".start") else "sending_window_end"
        detail = str(exc).partition(": ")[2]
        raise ConfigError(f"[campaigns] {key}: {detail}") from None


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


