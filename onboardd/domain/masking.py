"""Masking phone-like digit runs in free text (log values, texts from third parties)."""

from __future__ import annotations

import re
from typing import Final

# A run of 9+ digits with optional + and separators: masked wherever it appears, so a phone
# number never reaches a log line or an API response even when a text embeds one by accident.
_PHONE_RE: Final = re.compile(r"\+?\d[\d \-().]{5,}\d")
_NON_DIGIT: Final = re.compile(r"\D")


def mask_digits(text: str) -> str:
    """Mask every phone-like run of digits in text, keeping the last 4 digits."""

    def _mask(match: re.Match[str]) -> str:
        digits = _NON_DIGIT.sub("", match.group(0))
        if len(digits) < 9:  # dates (8 digits) and counts stay readable
            return match.group(0)
        return "*" * (len(digits) - 4) + digits[-4:]

    return _PHONE_RE.sub(_mask, text)
