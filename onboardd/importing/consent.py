"""Reading marketing consent from a row: the values people type (English and common Hindi
transliterations), several consent columns combined, and what an unknown answer means."""

from __future__ import annotations

import re
from typing import Final, Literal

import msgspec

from onboardd.domain.columns import ConsentSource

Consent = Literal["yes", "no", "unknown"]
DefaultConsent = Literal["assume", "require"]
# The reason recorded for a customer imported opted out because nothing said yes while
# [import] default_consent = "require".
CONSENT_REQUIRED: Final = "consent_required"

_YES: Final = frozenset({
    "yes", "y", "true", "t", "1", "on", "x", "ok", "okay", "haan", "haa", "han", "ha",
    "haanji", "hanji", "haan ji", "han ji", "ji", "ji haan", "jee", "opted in", "optedin",
    "opt in", "optin", "subscribed", "accepted", "accept", "allowed", "allow", "agree",
    "agreed", "granted", "given", "enabled", "active", "\u2713", "\u2714", "\u2705",
})  # fmt: skip
_NO: Final = frozenset({
    "no", "n", "false", "f", "0", "off", "nahi", "nahin", "nai", "nahi ji", "nhi", "na",
    "opted out", "optedout", "opt out", "optout", "unsubscribed", "declined", "refused",
    "denied", "disabled", "inactive", "rejected", "\u2717", "\u2718", "\u274c",
})  # fmt: skip
_BLANK: Final = frozenset({"", "-", "--", "n/a", "unknown", "not set", "none", "null", "?"})
# A date or time in a consent column records when the customer said so (e.g. "Unsubscribed
# On": 2024-03-02): the flag is set.
_DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_SPACES = re.compile(r"\s+")


class ConsentVerdict(msgspec.Struct, frozen=True):
    """What a row's consent columns say: yes, no or unknown; for a no, the reason it records
    (refused, blocked, unsubscribed) and the column that said it."""

    consent: Consent
    reason: str | None = None
    column: int | None = None


UNKNOWN: Final = ConsentVerdict("unknown")


def read_flag(text: str, negated: bool) -> bool | None:
    """True, False or None (blank or unreadable) for one cell. In a negated column ("Blocked")
    any other filled-in text is read as the flag being set, since such columns often hold
    the reason or the date instead of yes."""
    value = _SPACES.sub(" ", text.strip().casefold()).rstrip(".!")
    if value in _BLANK:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    if _DATE.search(value):
        return True
    return True if negated else None


def verdict(cells: list[str], sources: tuple[ConsentSource, ...]) -> ConsentVerdict:
    """Combine the consent columns: any no wins (the first one names the reason), else any
    yes, else unknown. A negated column can only say no: "Blocked: No" is not a yes."""
    said_yes = False
    for source in sources:
        index = source.column
        text = cells[index] if index < len(cells) else ""
        if not text:
            continue
        flag = read_flag(text, source.negated)
        if flag is None or (source.negated and not flag):
            continue
        if source.negated or not flag:
            return ConsentVerdict("no", reason=source.reason, column=index)
        said_yes = True
    return ConsentVerdict("yes") if said_yes else UNKNOWN


def as_default_consent(text: str) -> DefaultConsent:
    """A stored default_consent as its literal ("require" or, for anything else, "assume")."""
    return "require" if text == "require" else "assume"
