"""Configuration loading: the example file, env overrides, secrets from files, clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import pytest

from onboardd.config import Config, ConfigError, load

ROOT = Path(__file__).resolve().parents[2]


def test_example_file_loads_and_equals_the_defaults() -> None:
    assert load(ROOT / "onboardd.toml", {}) == Config()


def test_example_file_documents_every_key() -> None:
    data = tomllib.loads((ROOT / "onboardd.toml").read_text())
    for field in msgspec.structs.fields(Config):
        section = field.encode_name
        assert section in data, f"[{section}] missing from onboardd.toml"
        keys = {f.encode_name for f in msgspec.structs.fields(field.type)}
        assert keys == set(data[section]), (section, keys ^ set(data[section]))


def test_env_overrides_every_type() -> None:
    cfg = load(None, {
        "ONBOARDD_HTTP_PORT": "9000",
        "ONBOARDD_HTTP_TRUST_FORWARDED": "yes",
        "ONBOARDD_TWILIO_SMS_RATE_PER_S": "12.5",
        "ONBOARDD_LOG_LEVEL": "debug",
        "ONBOARDD_SIMULATOR_ALLOWED_FROM": "+15550001,+15550002",
        "ONBOARDD_IMPORT_MAX_ROWS": "20",
    })
    assert cfg.http.port == 9000 and cfg.http.trust_forwarded is True
    assert cfg.twilio.sms_rate_per_s == 12.5
    assert cfg.log.level == "debug"
    assert cfg.simulator.allowed_from == ["+15550001", "+15550002"]
    assert cfg.import_.max_rows == 20


def test_spec_twilio_variables_are_honoured() -> None:
    cfg = load(None, {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok",
                      "TWILIO_WHATSAPP_NUMBER": "whatsapp:+14155238886",
                      "TWILIO_SMS_NUMBER": "+15551234567"})
    assert (cfg.twilio.account_sid, cfg.twilio.auth_token) == ("AC1", "tok")
    assert cfg.twilio.sms_number == "+15551234567"
    assert not cfg.simulated_twilio


def test_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("s" * 40 + "\n")
    token = tmp_path / "twilio"
    token.write_text("tok\n")
    cfg = load(None, {"ONBOARDD_AUTH_JWT_SECRET_FILE": str(secret),
                      "ONBOARDD_TWILIO_ACCOUNT_SID": "AC1",
                      "ONBOARDD_TWILIO_AUTH_TOKEN_FILE": str(token)})
    assert cfg.auth.jwt_secret == "s" * 40
    assert cfg.twilio.auth_token == "tok"


@pytest.mark.parametrize(("toml", "env", "message"), [
    ("[http]\nprot = 1\n", {}, "[http] prot: unknown key"),
    ("[nope]\nx = 1\n", {}, "[nope]: unknown section"),
    ('[http]\nport = "x"\n', {}, "[http] port: Expected `int`, got `str`"),
    ("", {"ONBOARDD_HTTP_PORT": "70000"}, "[http] port: must be between 1 and 65535"),
    ("", {"ONBOARDD_TWILIO_SMS_RATE_PER_S": "-1"}, "[twilio] sms_rate_per_s: must be greater"),
    ("", {"ONBOARDD_TWILIO_API_BASE_URL": "not a url"}, "[twilio] api_base_url: 'not a url'"),
    ("", {"ONBOARDD_HTTP_PUBLIC_BASE_URL": "ftp://x"}, "[http] public_base_url"),
    ("", {"ONBOARDD_HTTP_BOGUS": "1"}, "ONBOARDD_HTTP_BOGUS: unknown key 'bogus'"),
    ("", {"ONBOARDD_PII_KEY": "short"}, "[pii] key:"),
    ("", {"ONBOARDD_DATABASE_URL": "mysql://x"}, "[database] url: must start with postgresql://"),
    ("", {"TWILIO_ACCOUNT_SID": "AC1"}, "[twilio] auth_token: missing while account_sid"),
    ("", {"TWILIO_AUTH_TOKEN": "t"}, "[twilio] account_sid: missing while auth_token"),
    ("[twilio]\nauth_token = \"t\"\n", {}, "[twilio] account_sid: missing"),
    ("", {"ONBOARDD_SIMULATOR_AUTH_TOKEN": "simulator-auth-token"},
     "[simulator] auth_token: 'simulator-auth-token' is public"),
    ("", {"ONBOARDD_SIMULATOR_ACCOUNT_SID": "ACsimulator00000000000000000000000"},
     "[simulator] account_sid must be AC followed by 32 hex digits"),
    ("", {"ONBOARDD_AUTH_JWT_SECRET_FILE": "/nonexistent/x"}, "[auth] jwt_secret_file: cannot"),
    ("[simulator]\nerror_rate_429 = 2.0\n", {}, "[simulator]"),
    ("[log]\nlevel = \"loud\"\n", {}, "[log] level:"),
])
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, toml: str, env: dict[str, str],
                                                message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load(path, env)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[http\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(bad, {})
