"""Which Twilio account onboardd talks to, and how a recipient is addressed: one place.

With no Twilio credentials configured (``Config.simulated_twilio``) every request goes to the
simulator with the simulator's account SID and auth token, and webhooks are signed with the
simulator's token; otherwise ``[twilio]``'s. The dispatcher, the lease sweep, reconciliation and
the webhooks all ask here.
"""

from __future__ import annotations

from twilio.rest import Client

from onboardd.campaigns.render import WHATSAPP_PREFIX
from onboardd.config import Config
from onboardd.services import Services
from onboardd.twilio_client import make_client


def credentials(cfg: Config) -> tuple[str, str]:
    """(account SID, auth token): the simulator's when simulated, else [twilio]'s."""
    if cfg.simulated_twilio:
        return cfg.simulator.account_sid, cfg.simulator.auth_token
    return cfg.twilio.account_sid, cfg.twilio.auth_token


def auth_token(cfg: Config) -> str:
    """The token Twilio signs webhooks with."""
    return credentials(cfg)[1]


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
