"""The shape of Twilio SIDs: two letters naming the resource and 32 hex digits (34 characters)."""

from __future__ import annotations

import re
from typing import Final

_SID_RE: Final = re.compile(r"(?P<prefix>[A-Z]{2})[0-9a-fA-F]{32}")
SID_LENGTH: Final = 34
ACCOUNT_PREFIXES: Final = frozenset({"AC"})
MESSAGE_PREFIXES: Final = frozenset({"SM", "MM"})


def has_shape(value: str, prefixes: frozenset[str]) -> bool:
    """True when value is one of prefixes followed by 32 hex digits."""
    match = _SID_RE.fullmatch(value)
    return match is not None and match.group("prefix") in prefixes


def is_account_sid(value: str) -> bool:
    """AC + 32 hex digits."""
    return has_shape(value, ACCOUNT_PREFIXES)


def is_message_sid(value: str) -> bool:
    """SM (SMS, WhatsApp) or MM (MMS) + 32 hex digits."""
    return has_shape(value, MESSAGE_PREFIXES)
