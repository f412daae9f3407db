"""Invitation message templates: checking, rendering and SMS cost analysis."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final, Literal

import msgspec

from onboardd.domain.money import format_rupees
from onboardd.domain.names import greeting_name

# Spec §4.3, verbatim.
DEFAULT_TEMPLATE: Final = (
    "Hi {{customer_name}}! 👋\n"
    "\n"
    "{{salon_name}} is now on SalonHub app. Book appointments, earn rewards, "
    "and get exclusive offers!\n"
    "\n"
    "🎁 Special for you: Get {{offer_amount}} OFF your next visit!\n"
    "Your code: {{offer_code}}\n"
    "\n"
    "Download now: {{download_link}}\n"
    "\n"
    "Valid for {{expiry_days}} days."
)

VARIABLES: Final = (
    "customer_name",
    "salon_name",
    "offer_amount",
    "offer_code",
    "download_link",
    "expiry_days",
)

CHANNELS: Final = ("whatsapp", "sms", "both")

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A stray brace and the word it was meant to wrap: "{{ customer_name }", "{name}}".
_STRAY = re.compile(r"\{+[^{}\0]*\}+|\{+\s*[^{}\s\0]*|[^{}\s\0]*\s*\}+")
# A placeholder, optionally followed by a "day"/"days" unit word: see _render_match.
_RENDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}(?:([ \t]+)((?i:days?))\b)?")


class TemplateError(ValueError):
    """A template uses unknown variables, malformed braces, or is empty."""

    def __init__(
        self, message: str, unknown: Iterable[str] = (), malformed: Iterable[str] = ()
    ) -> None:
        super().__init__(message)
        self.unknown: list[str] = list(unknown)
        self.malformed: list[str] = list(malformed)


class TemplateContext(msgspec.Struct, frozen=True):
    """The values substituted into a template for one customer."""

    customer_name: str
    salon_name: str
    offer_amount: str
    offer_code: str
    download_link: str
    expiry_days: int
    # The name is an organisation's (no personal name existed): greet with all of it.
    whole_name: bool = False


class SmsInfo(msgspec.Struct, frozen=True):
    """How an SMS body is encoded and how many billed segments it takes."""

    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    segments: int
    non_gsm_chars: list[str]


def _allowed_text() -> str:
    """List the allowed variables the way a user writes them."""
    return ", ".join("{{" + name + "}}" for name in VARIABLES)


def _malformed_fragments(text: str) -> list[str]:
    """Return each brace construct that is not a well-formed {{variable}}."""
    fragments = [m.group(0) for m in _PLACEHOLDER.finditer(text) if not _NAME.fullmatch(m.group(1))]
    # Mask the well-formed placeholders so only stray braces remain to be found.
    masked = _PLACEHOLDER.sub(lambda m: "\0" * len(m.group(0)), text)
    for match in _STRAY.finditer(masked):
        fragment = match.group(0).strip()
        fragments.append(fragment if len(fragment) <= 40 else fragment[:37] + "...")
    return fragments


def _error_message(unknown: list[str], malformed: list[str]) -> str:
    """Build one message naming every problem and the allowed variables."""
    parts: list[str] = []
    if unknown:
        names = ", ".join("{{" + n + "}}" for n in unknown)
        parts.append(f"Unknown template variable(s): {names}.")
    if malformed:
        quoted = "; ".join(repr(f) for f in malformed)
        parts.append(
            f"Malformed placeholder(s) near {quoted}: write variables as "
            "{{variable_name}} with two braces on each side."
        )
    parts.append(f"Allowed variables: {_allowed_text()}.")
    return " ".join(parts)


def check_template(text: str) -> list[str]:
    """Return the variables a template uses (first-use order); raise TemplateError."""
    if not text.strip():
        raise TemplateError(f"The message template is empty. Allowed variables: {_allowed_text()}.")
    used: list[str] = []
    unknown: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if not _NAME.fullmatch(name):
            continue
        target = used if name in VARIABLES else unknown
        if name not in target:
            target.append(name)
    malformed = _malformed_fragments(text)
    if unknown or malformed:
        raise TemplateError(_error_message(unknown, malformed), unknown, malformed)
    return used


def first_name(full_name: str) -> str:
    """Return the first name (the first word that is not an honorific such as "Dr."), keeping
    its casing; "there" if none."""
    return greeting_name(full_name)


def expiry_text(days: int) -> str:
    """Return "1 day" or "N days"."""
    return f"{days} day" if days == 1 else f"{days} days"


def _unit_word(days: int, written: str) -> str:
    """Return day/days for the count, in the casing the template author wrote."""
    word = "day" if days == 1 else "days"
    if written.isupper():
        return word.upper()
    return word.capitalize() if written[0].isupper() else word


def _values(ctx: TemplateContext) -> dict[str, str]:
    """Map every variable to its rendered text."""
    return {
        "customer_name": ctx.customer_name if ctx.whole_name else first_name(ctx.customer_name),
        "salon_name": ctx.salon_name,
        "offer_amount": ctx.offer_amount,
        "offer_code": ctx.offer_code,
        "download_link": ctx.download_link,
        "expiry_days": expiry_text(ctx.expiry_days),
    }


def _render_match(match: re.Match[str], values: dict[str, str], days: int) -> str:
    """Render one placeholder, plus the unit word that may follow it."""
    name, space, unit = match.group(1), match.group(2), match.group(3)
    if unit is None:
        return values[name]
    if name == "expiry_days":
        # The spec's own default says "Valid for {{expiry_days}} days." while the
        # variable means "30 days": when the author already wrote the unit we
        # render only the number, and make the unit agree with it ("1 day").
        return f"{days}{space}{_unit_word(days, unit)}"
    return f"{values[name]}{space}{unit}"


def render(text: str, ctx: TemplateContext) -> str:
    """Substitute the context into a checked template."""
    check_template(text)
    values = _values(ctx)
    # One pass over the original text, so a value that itself contains
    # "{{...}}" (say a customer named "{{salon_name}}") is never expanded.
    return _RENDER.sub(lambda m: _render_match(m, values, ctx.expiry_days), text)


def variables_for_contentsid(ctx: TemplateContext) -> dict[str, str]:
    """Return WhatsApp ContentVariables: {{1}}..{{6}} in the order of VARIABLES."""
    # An approved WhatsApp template must number its placeholders in this order:
    # 1 first name, 2 salon, 3 offer amount, 4 code, 5 link, 6 "30 days".
    values = _values(ctx)
    return {str(i): values[name] for i, name in enumerate(VARIABLES, start=1)}


def offer_amount_text(discount_type: str, discount_value: int) -> str:
    """Return the {{offer_amount}} text: "₹100" for fixed, "15%" for percentage."""
    if discount_type == "fixed":
        return format_rupees(discount_value)
    if discount_type == "percentage":
        return f"{discount_value}%"
    raise ValueError(f"discount type must be 'percentage' or 'fixed', not {discount_type!r}")


# GSM 03.38 default alphabet (one septet each); 0x1B is the escape, not a character.
GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: escape + character, so two septets each.
GSM_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


def _units(text: str) -> tuple[Literal["GSM-7", "UCS-2"], list[int], list[str]]:
    """Return the encoding, each character's size in units, and the non-GSM characters."""
    non_gsm: list[str] = []
    for char in text:
        if char not in GSM_BASIC and char not in GSM_EXTENSION and char not in non_gsm:
            non_gsm.append(char)
    if non_gsm:
        # UTF-16 code units: characters beyond the BMP (most emoji) take two.
        return "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text], non_gsm
    return "GSM-7", [2 if c in GSM_EXTENSION else 1 for c in text], non_gsm


def _segments(units: list[int], single: int, multi: int) -> int:
    """Count segments, never splitting an escape pair or a surrogate pair."""
    if sum(units) <= single:
        return 1
    # Phones and Twilio keep a two-unit character whole, so a segment may end
    # one unit short: counting by packing matches the bill, ceil(n/153) can not.
    count, used = 1, 0
    for size in units:
        if used + size > multi:
            count, used = count + 1, 0
        used += size
    return count


def sms_info(text: str) -> SmsInfo:
    """Analyse an SMS body: encoding, length in units, segments, offending characters."""
    encoding, units, non_gsm = _units(text)
    single, multi = (GSM_SINGLE, GSM_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    return SmsInfo(encoding, sum(units), _segments(units, single, multi), non_gsm)


def _show(char: str) -> str:
    """Show a character in a warning; invisible ones by code point."""
    if char.isprintable() and not char.isspace():
        return char
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


def preview_warnings(
    text: str, channel: str, has_content_sid: bool, max_segments: int = 3
) -> list[str]:
    """Return human-readable cost and deliverability warnings for a rendered message."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    warnings: list[str] = []
    if channel in ("sms", "both"):
        info = sms_info(text)
        if info.encoding == "UCS-2":
            shown = ", ".join(_show(c) for c in info.non_gsm_chars)
            warnings.append(
                f"UCS-2 encoding because of {shown}: each SMS segment holds "
                f"{UCS2_MULTI} characters instead of {GSM_MULTI}"
            )
        if info.segments > max_segments:
            warnings.append(
                f"{info.segments} SMS segments (more than the recommended {max_segments}): "
                "each segment is billed"
            )
    if channel in ("whatsapp", "both") and not has_content_sid:
        warnings.append(
            "WhatsApp business-initiated messages need an approved template: set whatsappContentSid"
        )
    return warnings
