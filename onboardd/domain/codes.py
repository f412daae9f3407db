"""Welcome offer codes and per-customer download tokens."""

from __future__ import annotations

import re
import secrets

# The spec's alphabet: no I, O, 0 or 1, which customers misread.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# New codes have 10 characters after the prefix: the spec's 6 fail the guessing bar (README,
# "Offer codes cannot be guessed"). Codes already sent with 6 stay valid.
CODE_LENGTH = 10
LEGACY_CODE_LENGTH = 6
DEFAULT_PREFIX = "WELCOME"
# imported_customers.offer_code is varchar(20): prefix, dash and body must fit.
MAX_PREFIX_LENGTH = 20 - 1 - CODE_LENGTH

_PREFIX_RE = re.compile(rf"[A-Z][A-Z0-9]{{0,{MAX_PREFIX_LENGTH - 1}}}")
_TYPED_PREFIX_RE = re.compile(r"[A-Z][A-Z0-9]{0,19}")
_BODY_RE = re.compile(rf"[{ALPHABET}]{{{LEGACY_CODE_LENGTH}}}|[{ALPHABET}]{{{CODE_LENGTH}}}")
_DASHED_RE = re.compile(r"([A-Z][A-Z0-9]{0,19})-([A-Z0-9]+)")


def generate_offer_code(prefix: str = DEFAULT_PREFIX) -> str:
    """Draw a fresh code such as WELCOME-A7K9M2XQ4R from a cryptographic RNG."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"offer code prefix {prefix!r} must be 1-{MAX_PREFIX_LENGTH} uppercase letters or "
            "digits, starting with a letter"
        )
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{body}"


def code_readings(raw: str) -> list[str]:
    """The canonical codes a typed one may be (case, surrounding space, missing dash); [] if none.

    Without the dash a code can split two ways (6 or 10 characters after the prefix); a reading
    with the default prefix is the only one returned when there is one, so an attempt never
    tests more than one code that can exist.
    """
    # Only case and the dash are forgiven: mapping O->0 or I->1 could turn a
    # typo into someone else's valid code.
    text = raw.strip().upper()
    dashed = _DASHED_RE.fullmatch(text)
    if dashed is not None:
        prefix, body = dashed.groups()
        return [f"{prefix}-{body}"] if _BODY_RE.fullmatch(body) else []
    readings = [f"{text[:-length]}-{text[-length:]}"
                for length in (LEGACY_CODE_LENGTH, CODE_LENGTH)
                if _TYPED_PREFIX_RE.fullmatch(text[:-length])
                and _BODY_RE.fullmatch(text[-length:])]
    default = [r for r in readings if r.startswith(DEFAULT_PREFIX + "-")]
    return default or readings


def download_token() -> str:
    """Return a URL-safe random token (16 characters) for a per-customer link."""
    return secrets.token_urlsafe(12)
