"""Which Twilio account onboardd talks to, and how a recipient is addressed: one place.

With no Twilio credentials configured (``Config.simulated_twilio``) every request goes to the
simulator with the simulator's account SID and auth token, and webhooks are signed with the
simulator's token; otherwise ``[twilio]``'s. The dispatcher, the lease sweep, reconciliation and
the webhooks all ask here.

The simulator's auth token is a secret like the development keys: ``[simulator] auth_token``
when set, else a random token generated once and kept in ``<state_dir>/simulator.token``
(mode 0600), so `onboardd serve`, `onboardd simulator` and `onboardd reconcile` on one state
directory agree, and nobody outside can sign a webhook with a public constant.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import Final

import msgspec
from twilio.rest import Client

from onboardd.config import Config, ConfigError
from onboardd.domain.campaigns.render import WHATSAPP_PREFIX
from onboardd.runtime import Services
from onboardd.simulator.settings import SimulatorSettings
from onboardd.twilio.client import make_client

# Where Twilio posts status callbacks: the webhook's route, and the URL every send asks for.
STATUS_CALLBACK_PATH: Final = "/api/webhooks/twilio/status"
SIMULATOR_TOKEN_FILE = "simulator.token"  # noqa: S105 - a file name
MIN_TOKEN_CHARS = 16


@functools.lru_cache(maxsize=16)
def _kept_token(path: Path) -> str:
    if path.exists():
        return _checked(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    try:
        os.link(fresh, path)  # atomic: a process that raced us and won keeps its token
    except FileExistsError:
        pass
    finally:
        fresh.unlink()
    return _checked(path)


def _checked(path: Path) -> str:
    token = path.read_text().strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"[paths] state_dir: {path} holds no usable simulator token (under "
                          f"{MIN_TOKEN_CHARS} characters); delete the file to generate a new one")
    return token


@functools.lru_cache(maxsize=16)
def simulator_token(state_dir: str | Path) -> str:
    """The simulator auth token of a state directory, generated on first use (kept per
    process: every signed webhook asks)."""
    return _kept_token(Path(state_dir).resolve() / SIMULATOR_TOKEN_FILE)


def simulator_settings(cfg: Config) -> SimulatorSettings:
    """[simulator] with its auth token resolved (the configured one, else the state dir's)."""
    if cfg.simulator.auth_token:
        return cfg.simulator
    return msgspec.structs.replace(cfg.simulator,
                                   auth_token=simulator_token(cfg.paths.state_dir))


def check_mode(cfg: Config) -> None:
    """Refuse to start on the simulator by accident: with an external database, simulator mode
    (no Twilio credentials) needs an explicit ``[simulator] enabled = true``."""
    if cfg.simulated_twilio and not cfg.embedded_db and not cfg.simulator.enabled:
        raise ConfigError(
            "[twilio] account_sid/auth_token: not set and [database] url is external: set "
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN for real Twilio, or [simulator] enabled = "
            "true (ONBOARDD_SIMULATOR_ENABLED=true) to run on the built-in simulator")


def credentials(cfg: Config) -> tuple[str, str]:
    """(account SID, auth token): the simulator's when simulated, else [twilio]'s."""
    if cfg.simulated_twilio:
        settings = simulator_settings(cfg)
        return settings.account_sid, settings.auth_token
    return cfg.twilio.account_sid, cfg.twilio.auth_token


def auth_token(cfg: Config) -> str:
    """The token Twilio signs webhooks with (every webhook asks: the simulator's is read without
    building its settings)."""
    if cfg.simulated_twilio:
        return cfg.simulator.auth_token or simulator_token(cfg.paths.state_dir)
    return cfg.twilio.auth_token


def api_base_url(services: Services) -> str:
    """The API base URL in use: the running simulator's, else [twilio] api_base_url."""
    return services.twilio_base_url or services.cfg.twilio.api_base_url


def new_client(services: Services) -> Client:
    """A Twilio client for this loop (twilio 9.x binds its session to the running loop)."""
    sid, token = credentials(services.cfg)
    return make_client(sid, token, api_base_url(services),
                       services.cfg.twilio.request_timeout_s)


def address(channel: str, e164: str) -> str:
    """The To/From address of a number on a channel ("whatsapp:+91..." or "+91...")."""
    return WHATSAPP_PREFIX + e164 if channel == "whatsapp" else e164


def status_callback_url(services: Services) -> str | None:
    """The status callback URL a send asks Twilio to post to (None without a public URL)."""
    base = services.public_base_url.rstrip("/")
    return base + STATUS_CALLBACK_PATH if base else None
