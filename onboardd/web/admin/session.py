"""The admin UI's session: the host app's admin JWT, kept in an HttpOnly SameSite=Strict cookie
that ends when the token does, a CSRF token derived from it, and the salon being looked at.

The cookie holds the token itself, so every instance behind a load balancer recognises the
session without shared state, and no session outlives the token the host app issued.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from onboardd.auth import AuthError, Principal
from onboardd.db.salons import SalonName, salon_names
from onboardd.web.keys import services

SESSION_COOKIE = "onboardd_admin"
SALON_COOKIE = "onboardd_salon"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/admin"
# A token claim naming more salons than this is not a salon admin's (the switcher lists them).
MAX_SALONS = 1000

class AdminSession(msgspec.Struct, frozen=True):
    """Who is looking at the admin UI, for which salon."""

    token: str
    who: Principal
    salon: SalonName
    salons: list[SalonName]
    csrf: str


ADMIN_SESSION = web.RequestKey("admin_session", AdminSession)


class LoginProblem(Exception):
    """A token the admin UI does not accept: `key` names the reason (the login page shows its
    sentence, PROBLEMS[key], also after a redirect that drops the token from the address)."""

    def __init__(self, key: str) -> None:
        super().__init__(PROBLEMS[key])
        self.key = key


PROBLEMS = {
    "expired": "This token has expired. Ask for a new admin link.",
    "invalid": "This token cannot be used: it is not a token this onboardd accepts (wrong "
               "signature or contents). Ask for a new admin link.",
    "customer": "This is a customer token. Sign in with an admin token from the salon's app or "
                "from `onboardd token --role admin`.",
    "no_salon": "This admin token names no salon. Ask for a token that lists the salons you "
                "manage.",
    "too_many": f"This token names more than {MAX_SALONS} salons; the admin UI takes a token "
                "for the salons one person manages.",
    "cross_site": "This sign-in link was opened from another site. Open the link yourself, or "
                  "paste the token below.",
}


def csrf_for(token: str) -> str:
    """The session's CSRF token: only a page that could read the session can know it."""
    return hashlib.sha256(b"onboardd-admin-csrf\x00" + token.encode()).hexdigest()[:32]


def csrf_matches(session: AdminSession, given: str | None) -> bool:
    """Constant-time comparison of a request's CSRF token with the session's."""
    return given is not None and hmac.compare_digest(session.csrf, given)


def admin_principal(request: web.Request, token: str) -> Principal:
    """The token's verified claims, when it is a current admin token."""
    try:
        who = services(request).tokens.decode(token.strip())
    except AuthError as exc:
        raise LoginProblem("expired" if exc.reason in ("expired", "too_old") else "invalid"
                           ) from None
    if who.role != "admin":
        raise LoginProblem("customer")
    if not who.salons:
        raise LoginProblem("no_salon")
    if len(who.salons) > MAX_SALONS:
        raise LoginProblem("too_many")
    return who


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies whenever the public address (or this request) is https."""
    base = services(request).public_base_url or services(request).cfg.http.public_base_url
    return base.startswith("https://") or request.secure


def same_origin(request: web.Request) -> bool:
    """A browser's Origin (or, without it, Referer) names this site; absent headers pass, as the
    session cookie is SameSite=Strict and the CSRF token is still required."""
    raw = request.headers.get("Origin") or request.headers.get("Referer")
    if not raw or raw == "null":
        return raw is None
    seen = urlsplit(raw)
    allowed = {f"{request.scheme}://{request.host}"}
    base = services(request).public_base_url or services(request).cfg.http.public_base_url
    if base:
        public = urlsplit(base)
        allowed.add(f"{public.scheme}://{public.netloc}")
    return f"{seen.scheme}://{seen.netloc}" in allowed


def start(request: web.Request, response: web.StreamResponse, token: str, who: Principal
          ) -> None:
    """Set the session cookie, living exactly as long as the token."""
    left = max(0, who.expires_at - int(time.time()))
    response.set_cookie(SESSION_COOKIE, token.strip(), max_age=left, path=COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=secure_cookies(request))


def choose_salon(response: web.StreamResponse, request: web.Request, salon_id: str) -> None:
    """Remember the salon being looked at (the switcher)."""
    response.set_cookie(SALON_COOKIE, salon_id, path=COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=secure_cookies(request))


def end(response: web.StreamResponse) -> None:
    """Clear the session (logout, or a token that stopped working)."""
    for name in (SESSION_COOKIE, SALON_COOKIE):
        response.del_cookie(name, path=COOKIE_PATH)


class NoSalon(Exception):
    """The session is valid but may not look at the salon asked for (403)."""


async def load(request: web.Request) -> AdminSession | None:
    """The request's session, or None without a usable session cookie. Raises NoSalon when a
    `?salon=` names a salon the token does not manage or that does not exist."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        who = admin_principal(request, token)
    except LoginProblem:
        return None
    known = await salon_names(services(request).pool, list(who.salons))
    # ?salon= on a page (the guard then remembers it and drops it from the address); a form
    # acts on the remembered salon only.
    asked = request.query.get("salon") if request.method == "GET" else None
    wanted = asked or request.cookies.get(SALON_COOKIE)
    chosen = next((s for s in known if s.id == wanted), None)
    if chosen is None and asked:
        raise NoSalon("This sign-in does not manage that salon. Switch to one of yours, or "
                      "sign in with a token that lists it.")
    if chosen is None:
        if not known:
            raise NoSalon("None of the salons this token lists exist in onboardd yet. Add the "
                          "salon with `onboardd salon add`, or sign in with another token.")
        chosen = known[0]
    return AdminSession(token, who, chosen, known, csrf_for(token))


def current(request: web.Request) -> AdminSession:
    """The session of a page behind the guard."""
    found: AdminSession | None = request.get(ADMIN_SESSION)
    if found is None:
        raise RuntimeError("admin route is not behind the admin guard")
    return found
