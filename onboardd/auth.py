"""JWT bearer tokens: the claims onboardd trusts (sub, role, salons, exp)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Literal

import jwt
import msgspec

from onboardd.config import Config, ConfigError

Role = Literal["admin", "customer"]


class AuthError(Exception):
    """A token that cannot be trusted; the message is safe to show the caller."""


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the verified claims of their token."""

    sub: str
    role: Role
    salons: tuple[str, ...] = ()
    expires_at: int = 0  # the token's exp (Unix seconds): an admin UI session ends with it

    def manages(self, salon_id: str) -> bool:
        """True when this is an admin token listing salon_id."""
        return self.role == "admin" and salon_id in self.salons


class TokenCodec:
    """Verifies (and, where a signing key is configured, mints) tokens with one algorithm."""

    def __init__(self, algorithm: Literal["HS256", "RS256"], verify_key: str | bytes,
                 signing_key: str | bytes | None) -> None:
        self.algorithm = algorithm
        self._verify_key = verify_key
        self._signing_key = signing_key

    def decode(self, token: str) -> Principal:
        """Verify signature, expiry and claim shapes; refuse alg none and any other algorithm."""
        try:
            claims = jwt.decode(token, self._verify_key, algorithms=[self.algorithm],
                                options={"require": ["sub", "role", "exp"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        role = claims.get("role")
        salons = claims.get("salons", [])
        if role not in ("admin", "customer"):
            raise AuthError("invalid token: role must be 'admin' or 'customer'")
        if not isinstance(salons, list) or not all(isinstance(s, str | int) for s in salons):
            raise AuthError("invalid token: salons must be a list of salon ids")
        return Principal(sub=str(claims["sub"]), role=role, salons=tuple(str(s) for s in salons),
                         expires_at=int(claims["exp"]))

    def encode(self, sub: str, role: Role, salons: list[str], ttl_s: int) -> str:
        """Mint a token (local use and tests)."""
        if self._signing_key is None:
            raise ConfigError("[auth] jwt_private_key_file: needed to mint RS256 tokens")
        now = int(time.time())
        claims = {"sub": sub, "role": role, "salons": salons, "iat": now, "exp": now + ttl_s}
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


def codec_from_config(cfg: Config) -> TokenCodec:
    """HS256 with [auth] jwt_secret, else RS256 with the public key file; embedded mode invents a
    secret under the state directory so `onboardd token` works out of the box."""
    if cfg.auth.jwt_secret:
        if len(cfg.auth.jwt_secret) < 32:
            raise ConfigError("[auth] jwt_secret: must be at least 32 characters")
        return TokenCodec("HS256", cfg.auth.jwt_secret, cfg.auth.jwt_secret)
    if cfg.auth.jwt_public_key_file:
        try:
            public = Path(cfg.auth.jwt_public_key_file).read_bytes()
            private = (Path(cfg.auth.jwt_private_key_file).read_bytes()
                       if cfg.auth.jwt_private_key_file else None)
        except OSError as exc:
            raise ConfigError(f"[auth] jwt key file: {exc.filename}: {exc.strerror}") from None
        return TokenCodec("RS256", public, private)
    if cfg.embedded_db:
        secret = _embedded_secret(Path(cfg.paths.state_dir))
        return TokenCodec("HS256", secret, secret)
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
