"""Classification of inbound SMS/WhatsApp replies into opt-out keywords."""

from __future__ import annotations

import string
from typing import Final, Literal

InboundKind = Literal["stop", "start", "help", "other"]

STOP_WORDS: Final = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"}
)
START_WORDS: Final = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS: Final = frozenset({"HELP", "INFO"})

# Trailing punctuation people add ("Stop.", "STOP!!"); nothing else is stripped.
_TRAILING: Final = string.punctuation + "…।"


def classify_inbound(body: str) -> InboundKind:
    """Classify a reply that consists of exactly one keyword; anything else is "other"."""
    # Twilio's rule: the keyword must be the whole message. "please stop texting
    # me" is a sentence, not a command, so it is "other" (a human reads it).
    word = body.strip().rstrip(_TRAILING).strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return "other"
