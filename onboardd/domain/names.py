"""Customer names as people expect them: single spaces, proper case for names typed all in
capitals or all in lower case, honorifics kept, and the first name for a greeting."""

from __future__ import annotations

import re
from typing import Final

# Honorifics written before a name in India and elsewhere; a greeting skips them.
HONORIFICS: Final = frozenset({
    "dr", "mr", "mrs", "ms", "miss", "mx", "smt", "shri", "shree", "sri", "shrimati", "km",
    "kumari", "prof", "er", "adv", "capt", "col", "lt", "sir", "md", "mohd", "sushri",
})  # fmt: skip
# A letter at the start of a word or after a hyphen, apostrophe or dot: "a.r. o'brien-khan".
_WORD_START = re.compile(r"(^|[\s\-'\u2019.])(\w)")


def collapse_spaces(text: str) -> str:
    """Trim and turn every run of whitespace into one space."""
    return " ".join(text.split())


def clean_name(text: str) -> str:
    """Collapse spaces; proper-case a name typed all in capitals or all in lower case
    ("RAHUL  VERMA" -> "Rahul Verma", "dr. a.r. rahman" -> "Dr. A.R. Rahman"); a name in
    mixed case ("McDonald", "DSouza") or in a script without case is kept as typed."""
    name = collapse_spaces(text)
    if name.isupper() or name.islower():
        return _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), name.lower())
    return name


def greeting_name(full_name: str) -> str:
    """The first name: the first word that is not an honorific ("Dr. Priya Nair" -> "Priya");
    "there" when the name is empty."""
    parts = full_name.split()
    for part in parts:
        if part.rstrip(".").casefold() not in HONORIFICS:
            return part
    return parts[0] if parts else "there"
