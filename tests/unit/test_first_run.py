"""The embedded first run's banner: where the API is, the admin UI's sign-in link on a line of
its own (a terminal makes it clickable), the token, and what to do next."""

from __future__ import annotations

import datetime as dt

from onboardd.db.salons import SalonRow
from onboardd.first_run import admin_link, render_banner

BASE = "http://127.0.0.1:8080"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlbWJlZGRlZC1hZG1pbiJ9.c2lnbmF0dXJl"


def _salon(name: str, salon_id: str) -> SalonRow:
    return SalonRow(salon_id, name, "IN", "Asia/Kolkata", None, dt.datetime(2026, 1, 1), 0)


def test_the_banner_prints_the_sign_in_link_alone_on_its_line() -> None:
    text = render_banner(BASE, [_salon("Demo Salon", "s-1")], TOKEN, simulated=True)
    lines = text.splitlines()
    assert lines[1:8] == [
        "onboardd is serving with the embedded PostgreSQL and the built-in Twilio simulator.",
        f"  API          {BASE}/api",
        "  Salon        Demo Salon (id s-1)",
        "  Admin UI     open this link to sign in (valid 12 h):",
        f"  {BASE}/admin/login?token={TOKEN}",
        "  Admin token  valid 12 h, for Demo Salon:",
        f"  {TOKEN}",
    ]
    assert f"{BASE}/api/salons/s-1/welcome-offers" in text


def test_the_link_carries_the_token_unchanged_and_escapes_what_a_url_cannot_hold() -> None:
    assert admin_link(BASE, TOKEN) == f"{BASE}/admin/login?token={TOKEN}"  # JWTs are URL-safe
    assert admin_link(BASE, "a+b/c=") == f"{BASE}/admin/login?token=a%2Bb%2Fc%3D"


def test_without_a_token_the_banner_names_the_login_page_and_why() -> None:
    salons = [_salon("Demo Salon", "s-1"), _salon("Second", "s-2")]
    text = render_banner(BASE, salons, None, simulated=False,
                         why_no_token="[auth] jwt_private_key: not set")
    assert "  Salon        Demo Salon (id s-1) and 1 more" in text
    assert f"  Admin UI     {BASE}/admin/login (paste an admin token there)" in text
    assert "  Admin token  (none: [auth] jwt_private_key: not set)" in text
    assert "token=" not in text and "embedded PostgreSQL and Twilio." in text
