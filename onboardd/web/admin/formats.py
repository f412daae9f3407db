"""How the admin UI writes numbers, money, offers and times (Jinja filters)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from onboardd.domain.money import format_rupees
from onboardd.domain.offers import Offer
from onboardd.domain.templates import offer_amount_text


def rupees(paisa: int | None) -> str:
    """₹1,234.50 / ₹100 (money is stored in paisa)."""
    return "" if paisa is None else format_rupees(paisa)


def offer_amount(offer: Offer) -> str:
    """The amount as the customer reads it: "₹100", "15% up to ₹200", plus the minimum bill."""
    text = offer_amount_text(offer.discount_type, offer.discount_value)
    if offer.discount_type == "percentage" and offer.max_discount_in_paisa:
        text += f" up to {format_rupees(offer.max_discount_in_paisa)}"
    if offer.minimum_purchase_in_paisa:
        text += f" on bills of {format_rupees(offer.minimum_purchase_in_paisa)} or more"
    return text


def number(value: int | float | None) -> str:
    """1,234 (a dash for nothing)."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if isinstance(value, int) or value == int(value) else f"{value:,.1f}"


def percent(value: float | None) -> str:
    """A rate in 0..1 as "12.5 %" (a dash when there is nothing to divide)."""
    if value is None:
        return "–"
    return f"{value * 100:.1f} %"


def local_time(moment: datetime | None, timezone: str = "UTC") -> str:
    """A moment in the salon's timezone: "2 Dec 2026, 14:05"."""
    if moment is None:
        return "–"
    shown = moment.astimezone(ZoneInfo(timezone))
    return f"{shown.day} {shown:%b %Y, %H:%M}"


def problem_sentence(message: str, field: str | None = None) -> str:
    """A service's message as a sentence to show next to the field it names: without its
    leading "field: " (that field's; with no field given, any one-word lead such as "file: "),
    starting with a capital."""
    if field is not None:
        prefix = field + ": "
        if message.startswith(prefix):
            message = message[len(prefix):]
    else:
        head, colon, rest = message.partition(": ")
        if colon and head and " " not in head:
            message = rest
    return message[:1].upper() + message[1:]


FILTERS: dict[str, Callable[..., Any]] = {
    "rupees": rupees,
    "offer_amount": offer_amount,
    "number": number,
    "percent": percent,
    "local_time": local_time,
}
