"""JWT bearer tokens: the claims onboardd trusts (sub, role, salons, exp, and the optional phone),
checked with PyJWT's own options plus the limits onboardd sets ([auth] issuer, audience,
leeway_s, max_token_age_s; see the README's JWT contract)."""

from __future__ import annotations

import math
import secrets
import time
from pathlib import Path
from typing import Any, Final, Literal

import jwt
import msgspec

from onboardd.config import Config, ConfigError
from onboardd.domain.matching import NO_REGION
from onboardd.domain.phones import PhoneError, normalize_phone

Role = Literal["admin", "customer"]

# Claim limits: a token is small, whatever the host app puts in it.
MAX_SALONS: Final = 1000
MAX_SUB_LENGTH: Final = 255


class AuthError(Exception):
    """A token that cannot be trusted; the message is safe to show the caller, the reason is a
    stable word for programs (see REASONS)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


# Every 401 reason (details.reason), as the README's JWT contract lists them: "missing" is the
# web front's (no bearer token), the others an AuthError's.
REASONS: Final = ("missing", "invalid", "expired", "not_yet_valid", "too_old", "missing_claim",
                  "wrong_issuer", "wrong_audience", "claim_too_large", "bad_claim")


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the verified claims of their token."""

    sub: str
    role: Role
    salons: tuple[str, ...] = ()
    expires_at: int = 0  # the token's exp (Unix seconds): an admin UI session ends with it
    # The host app's OTP-verified number (the optional `phone` claim), in E.164.
    phone: str | None = None

    def manages(self, salon_id: str) -> bool:
        """True when this is an admin token listing salon_id."""
        return self.role == "admin" and salon_id in self.salons


class TokenRules(msgspec.Struct, frozen=True):
    """What a token must carry beyond a valid signature and exp: [auth] issuer, audience
    ("" = not checked), leeway_s (clock skew allowed on exp, nbf and iat) and
    max_token_age_s (0 = no limit; otherwise iat is required)."""

    issuer: str = ""
    audience: str = ""
    leeway_s: float = 0.0
    max_age_s: int = 0


def _required(rules: TokenRules) -> list[str]:
    required = ["sub", "role", "exp"]
    if rules.max_age_s:
        required.append("iat")
    return required


def _pyjwt_error(exc: jwt.InvalidTokenError, rules: TokenRules) -> AuthError:
    """PyJWT's refusal as a sentence naming the claim and the fix."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return AuthError("token has expired: get a new one from the app", "expired")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return AuthError(f"invalid token: {exc}: its issue or start time is in the future "
                         "(check the issuer's clock, or raise [auth] leeway_s)", "not_yet_valid")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        why = {"iat": "onboardd limits token age ([auth] max_token_age_s)",
               "iss": "onboardd checks the issuer ([auth] issuer)",
               "aud": "onboardd checks the audience ([auth] audience)"}.get(exc.claim, "")
        return AuthError(f"invalid token: the {exc.claim} claim is required"
                         + (f": {why}" if why else ""), "missing_claim")
    if isinstance(exc, jwt.InvalidIssuerError):
        return AuthError("invalid token: iss is not the issuer onboardd accepts ([auth] issuer)",
                         "wrong_issuer")
    if isinstance(exc, jwt.InvalidAudienceError):
        if not rules.audience:
            return AuthError("invalid token: it names an audience (aud) but onboardd has none "
                             "configured: set [auth] audience to the value it should accept",
                             "wrong_audience")
        return AuthError("invalid token: aud does not name the audience onboardd accepts "
                         "([auth] audience)", "wrong_audience")
    if isinstance(exc, jwt.exceptions.InvalidSubjectError):
        return AuthError("invalid token: sub must be a non-empty string (the user id)",
                         "bad_claim")
    return AuthError(f"invalid token: {exc}")


def _checked_phone(value: Any) -> str | None:
    """The phone claim in E.164, when there is one; refused unless it is a mobile number with
    its country code."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return normalize_phone(value, NO_REGION)
        except PhoneError as exc:
            reason = exc.message
    else:
        reason = "not a string"
    raise AuthError(f"invalid token: phone must be the user's verified mobile number in E.164, "
                    f"such as +919876543210 ({reason})", "bad_claim")


def _principal(claims: dict[str, Any]) -> Principal:
    """Claim shapes and sizes (PyJWT has checked signature, times, iss and aud)."""
    sub, role, salons = claims["sub"], claims.get("role"), claims.get("salons", [])
    if not isinstance(sub, str) or not sub.strip():
        raise AuthError("invalid token: sub must be a non-empty string (the user id)",
                        "bad_claim")
    if len(sub) > MAX_SUB_LENGTH:
        raise AuthError(f"invalid token: sub is {len(sub)} characters long; at most "
                        f"{MAX_SUB_LENGTH}", "claim_too_large")
    if role not in ("admin", "customer"):
        raise AuthError("invalid token: role must be 'admin' or 'customer'", "bad_claim")
    if not isinstance(salons, list):
        raise AuthError("invalid token: salons must be a list of salon ids", "bad_claim")
    if len(salons) > MAX_SALONS:
        raise AuthError(f"invalid token: salons lists {len(salons)} entries; at most "
                        f"{MAX_SALONS}", "claim_too_large")
    if not all(isinstance(s, str | int) for s in salons):
        raise AuthError("invalid token: salons must be a list of salon ids", "bad_claim")
    return Principal(sub=sub, role=role, salons=tuple(str(s) for s in salons),
                     expires_at=int(claims["exp"]), phone=_checked_phone(claims.get("phone")))


class TokenCodec:
    """Verifies (and, where a signing key is configured, mints) tokens with one algorithm."""

    def __init__(self, algorithm: Literal["HS256", "RS256"], verify_key: str | bytes,
                 signing_key: str | bytes | None, rules: TokenRules | None = None) -> None:
        self.algorithm = algorithm
        self.rules = rules or TokenRules()
        self._verify_key = verify_key
        self._signing_key = signing_key

    def decode(self, token: str) -> Principal:
        """Verify signature, times, issuer, audience, claim shapes and sizes; refuse alg none
        and any other algorithm."""
        rules = self.rules
        try:
            claims = jwt.decode(
                token, self._verify_key, algorithms=[self.algorithm],
                options={"require": _required(rules)},
                issuer=rules.issuer or None, audience=rules.audience or None,
                leeway=rules.leeway_s)
        except jwt.InvalidTokenError as exc:
            raise _pyjwt_error(exc, rules) from None
        if rules.max_age_s:
            age = time.time() - float(claims["iat"])  # PyJWT checked it is a number
            if age > rules.max_age_s + rules.leeway_s:
                raise AuthError(f"token is too old: issued {math.floor(age)}s ago, onboardd "
                                f"accepts tokens up to {rules.max_age_s}s old "
                                "([auth] max_token_age_s): get a new one from the app",
                                "too_old")
        return _principal(claims)

    def encode(self, sub: str, role: Role, salons: list[str], ttl_s: int, *,
               phone: str | None = None) -> str:
        """Mint a token (local use and tests), with the configured iss and aud."""
        if self._signing_key is None:
            raise ConfigError("[auth] jwt_private_key_file: needed to mint RS256 tokens")
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "role": role, "salons": salons, "iat": now,
                                  "exp": now + ttl_s}
        if phone is not None:
            claims["phone"] = phone
        if self.rules.issuer:
            claims["iss"] = self.rules.issuer
        if self.rules.audience:
            claims["aud"] = self.rules.audience
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)


def _embedded_secret(state_dir: Path) -> str:
    """A development HS256 secret kept under the state directory (embedded mode only)."""
    path = state_dir / "jwt.secret"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def rules_from_config(cfg: Config) -> TokenRules:
    """The [auth] checks beyond the signature."""
    auth = cfg.auth
    return TokenRules(issuer=auth.issuer, audience=auth.audience, leeway_s=auth.leeway_s,
                      max_age_s=auth.max_token_age_s)


def codec_from_config(cfg: Config) -> TokenCodec:
    """HS256 with [auth] jwt_secret, else RS256 with the public key file; embedded mode invents a
    secret under the state directory so `onboardd token` works out of the box."""
    rules = rules_from_config(cfg)
    if cfg.auth.jwt_secret:
        if len(cfg.auth.jwt_secret) < 32:
            raise ConfigError("[auth] jwt_secret: must be at least 32 characters")
        return TokenCodec("HS256", cfg.auth.jwt_secret, cfg.auth.jwt_secret, rules)
    if cfg.auth.jwt_public_key_file:
        try:
            public = Path(cfg.auth.jwt_public_key_file).read_bytes()
            private = (Path(cfg.auth.jwt_private_key_file).read_bytes()
                       if cfg.auth.jwt_private_key_file else None)
        except OSError as exc:
            raise ConfigError(f"[auth] jwt key file: {exc.filename}: {exc.strerror}") from None
        return TokenCodec("RS256", public, private, rules)
    if cfg.embedded_db:
        secret = _embedded_secret(Path(cfg.paths.state_dir))
        return TokenCodec("HS256", secret, secret, rules)
    raise ConfigError(
        "[auth] jwt_secret: required (or jwt_public_key_file for RS256); "
        "set ONBOARDD_AUTH_JWT_SECRET"
    )


def parse_ttl(text: str) -> int:
    """'90s', '15m', '1h', '7d' or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        value = int(text[:-1]) * units[text[-1]] if text and text[-1] in units else int(text)
    except ValueError:
        raise ValueError(f"--ttl: '{text}' is not a duration like 90s, 15m, 1h or 7d") from None
    if value <= 0:
        raise ValueError("--ttl: must be positive")
    return value
