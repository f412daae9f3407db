"""Formatting of integer paisa amounts as Indian rupees."""

from __future__ import annotations

RUPEE = "₹"


def _group_indian(digits: str) -> str:
    """Group a digit string the Indian way: 12,34,56,789."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *pairs, tail])


def _split(paisa: int) -> tuple[int, int]:
    """Split a non-negative paisa amount into (rupees, paise)."""
    if isinstance(paisa, bool) or not isinstance(paisa, int):
        raise TypeError(f"amount must be an int number of paisa, not {type(paisa).__name__}")
    if paisa < 0:
        raise ValueError(f"amount must not be negative: {paisa} paisa")
    return divmod(paisa, 100)


def format_rupees(paisa: int) -> str:
    """Format paisa as ₹ with Indian grouping, paise shown only when non-zero."""
    rupees, paise = _split(paisa)
    text = RUPEE + _group_indian(str(rupees))
    return f"{text}.{paise:02d}" if paise else text


def rupees_plain(paisa: int) -> str:
    """Format paisa/100 the way JavaScript prints a number: 500, 499.5, 0.05."""
    # The spec builds "Minimum purchase of ₹${min/100} required" in JS; this
    # reproduces that text with integer math so no float rounding creeps in.
    rupees, paise = _split(paisa)
    if not paise:
        return str(rupees)
    return f"{rupees}.{paise:02d}".rstrip("0")
