"""The embedded first run: a salon to work with, and a banner saying where to go next.

Only with the embedded database (a developer's or evaluator's machine): an external database
belongs to a deployment, where salons come from the host app or `onboardd salon add`, and a
token is never printed.
"""

from __future__ import annotations

from urllib.parse import quote

from onboardd.config import ConfigError
from onboardd.db.salons import SalonRow, add_first_salon, list_salons
from onboardd.logging import get_logger
from onboardd.runtime import Services

log = get_logger("first_run")

FIRST_SALON_NAME = "Demo Salon"
BANNER_TOKEN_TTL_S = 12 * 3600
BANNER_SUBJECT = "embedded-admin"
# The token's salons claim lists at most this many (a development database stays small).
BANNER_MAX_SALONS = 50


async def ensure_first_salon(services: Services) -> None:
    """Create "Demo Salon" when the database has no salon yet."""
    salon_id = await add_first_salon(services.pool, FIRST_SALON_NAME)
    if salon_id is not None:
        log.info("first_salon_created", salon_id=salon_id, name=FIRST_SALON_NAME)


def admin_link(base_url: str, token: str) -> str:
    """The admin UI's sign-in link: the login takes the token and redirects away from it."""
    return f"{base_url}/admin/login?token={quote(token, safe='')}"


def render_banner(base_url: str, salons: list[SalonRow], token: str | None, simulated: bool,
                  why_no_token: str = "") -> str:
    """The text printed once the embedded daemon serves. The sign-in link stands alone on its
    line, so a terminal makes it clickable; without a token there is only the login page."""
    first = salons[0]
    twilio = "the built-in Twilio simulator" if simulated else "Twilio"
    names = ", ".join(s.name for s in salons)
    if token is None:
        access = [f"  Admin UI     {base_url}/admin/login (paste an admin token there)",
                  f"  Admin token  (none: {why_no_token})"]
    else:
        access = ["  Admin UI     open this link to sign in (valid 12 h):",
                  f"  {admin_link(base_url, token)}",
                  f"  Admin token  valid 12 h, for {names}:",
                  f"  {token}"]
    lines = [
        "",
        f"onboardd is serving with the embedded PostgreSQL and {twilio}.",
        f"  API          {base_url}/api",
        f"  Salon        {first.name} (id {first.id})"
        + (f" and {len(salons) - 1} more" if len(salons) > 1 else ""),
        *access,
        "",
        "Next:",
        "  fill the salon with a believable history:  onboardd demo",
        f'  call the API:  curl -H "Authorization: Bearer <token>" '
        f"{base_url}/api/salons/{first.id}/welcome-offers",
        '  add your own salon:  onboardd salon add "My Salon" --timezone Asia/Kolkata',
        "",
    ]
    return "\n".join(lines)


async def banner(services: Services) -> str:
    """The banner with a fresh 12-hour admin token for the database's salons."""
    salons = await list_salons(services.pool, BANNER_MAX_SALONS)
    try:
        token: str | None = services.tokens.encode(
            BANNER_SUBJECT, "admin", [s.id for s in salons], BANNER_TOKEN_TTL_S)
        why = ""
    except ConfigError as exc:  # RS256 with only the host app's public key: we cannot sign
        token, why = None, str(exc)
    return render_banner(services.public_base_url, salons, token,
                         services.cfg.simulated_twilio, why)
