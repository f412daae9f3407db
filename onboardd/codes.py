"""Welcome offer codes and per-customer download tokens."""

from __future__ import annotations

import re
import secrets

# The spec's alphabet: no I, O, 0 or 1, which customers misread.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
DEFAULT_PREFIX = "WELCOME"

_PREFIX_RE = re.compile(r"[A-Z][A-Z0-9]{0,19}")
_CODE_RE = re.compile(rf"([A-Z][A-Z0-9]{{0,19}}?)-?([{ALPHABET}]{{{CODE_LENGTH}}})")


def generate_offer_code(prefix: str = DEFAULT_PREFIX) -> str:
    """Draw a fresh code such as WELCOME-A7K9M2 from a cryptographic RNG."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"offer code prefix {prefix!r} must be 1-20 uppercase letters or digits, "
            "starting with a letter"
        )
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{body}"


def normalize_code(raw: str) -> str | None:
    """Canonicalise a typed code (case, surrounding space, missing dash), else None."""
    # Only case and the dash are forgiven: mapping O->0 or I->1 could turn a
    # typo into someone else's valid code.
    match = _CODE_RE.fullmatch(raw.strip().upper())
    if match is None:
        return None
    prefix, body = match.groups()
    return f"{prefix}-{body}"


def download_token() -> str:
    """Return a URL-safe random token (16 characters) for a per-customer link."""
    return secrets.token_urlsafe(12)
