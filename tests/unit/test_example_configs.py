"""The shipped example configs load."""

from __future__ import annotations

from pathlib import Path

from onboardd.config import load

ROOT = Path(__file__).resolve().parents[2]


def test_production_example_loads_with_env_secrets() -> None:
    cfg = load(ROOT / "config" / "production.toml", {
        "ONBOARDD_DATABASE_URL": "postgresql://u:p@db/x",
        "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
    })
    assert cfg.http.public_base_url == "https://onboard.example.com"
    assert not cfg.embedded_db and not cfg.simulated_twilio
