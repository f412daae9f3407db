"""SMS segment counting: GSM-7 (160/153 septets) or UCS-2 (70/67 code units)."""

from __future__ import annotations

import math

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


def num_segments(body: str) -> int:
    """How many SMS segments Twilio would bill for ``body`` (at least 1)."""
    septets = 0
    for char in body:
        if char in _GSM_BASIC:
            septets += 1
        elif char in _GSM_EXTENSION:
            septets += 2
        else:
            return _ucs2_segments(body)
    if septets <= 160:
        return 1
    return math.ceil(septets / 153)


def _ucs2_segments(body: str) -> int:
    """Segments for a body that needs UCS-2 (counted in UTF-16 code units)."""
    units = len(body.encode("utf-16-le")) // 2
    if units <= 70:
        return 1
    return math.ceil(units / 67)
