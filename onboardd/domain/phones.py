"""Phone number normalisation to E.164, spreadsheet cell text, and masking for logs."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType

INVALID_PHONE: Final = "Invalid phone number format"
NOT_MOBILE: Final = "Phone number is a landline and cannot receive SMS or WhatsApp"

# Only these types can take an SMS or a WhatsApp message. FIXED_LINE_OR_MOBILE is
# kept because NANP (US/CA) numbers cannot be told apart. PERSONAL_NUMBER (UK 070
# follow-me), VOIP, PAGER, UAN, toll-free and premium numbers are refused: most of
# them cannot receive SMS and a failed invitation costs the salon money.
_SMS_CAPABLE: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

# phonenumbers reads letters as a keypad vanity number ("abcdefghij" would become
# 2223334445); customers never have those, so any letter makes the input invalid.
_TEL_PREFIX: Final = "tel:"

# Scientific notation as Excel writes it into CSV: "9.87654321E9", "9.876543210E+09".
_SCIENTIFIC = re.compile(r"[+]?(\d)(?:\.(\d+))?[eE]\+?(\d{1,2})")
_MIN_SCI_DIGITS: Final = 7
_MAX_SCI_DIGITS: Final = 15
# Excel's narrow-column display rounds to ~6 significant digits ("9.87654E+09");
# accepting that would invent a wrong phone, so at most this many digits may be padding.
_MAX_SCI_PADDING: Final = 2


class PhoneError(ValueError):
    """A phone number that cannot be used, with the user-facing reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def normalize_phone(raw: str, region: str = "IN") -> str:
    """Return the E.164 form of a mobile number, or raise PhoneError."""
    text = raw.strip()
    if text[: len(_TEL_PREFIX)].lower() == _TEL_PREFIX:
        text = text[len(_TEL_PREFIX) :]
    if not text or any(c.isalpha() for c in text):
        raise PhoneError(INVALID_PHONE)
    number, kind = _parse_valid(text, region)
    if number is None:
        number, kind = _parse_with_plus(text)
    if number is None:
        raise PhoneError(INVALID_PHONE)
    if kind not in _SMS_CAPABLE:
        raise PhoneError(NOT_MOBILE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_valid(text: str, region: str | None) -> tuple[PhoneNumber | None, int]:
    """Parse text; return the number and its type, or None when it is not valid."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None, PhoneNumberType.UNKNOWN
    if number.extension:
        return None, PhoneNumberType.UNKNOWN
    # number_type() is UNKNOWN exactly when is_valid_number() is False (both run the
    # same pattern match for the number's own region), so one call does both jobs.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return None, kind
    return number, kind


def _parse_with_plus(text: str) -> tuple[PhoneNumber | None, int]:
    """Spec rule: more than 10 digits that are not national means a country code."""
    digits = phonenumbers.normalize_digits_only(text)
    if len(digits) <= 10:
        return None, PhoneNumberType.UNKNOWN
    if digits.startswith("00"):
        # International prefix used by most of the world, even when the salon's
        # region dials abroad differently (US: 011).
        digits = digits[2:]
    return _parse_valid("+" + digits, None)


def cell_to_text(value: object) -> str:
    """Return the text a spreadsheet user saw in a cell (NUL characters dropped: nobody
    sees them, and PostgreSQL text cannot hold them)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _unscientific(value.replace("\x00", "").strip())
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).replace("\x00", "").strip()


def _float_text(value: float) -> str:
    """Excel stores every number as a float; integral ones are shown without '.0'."""
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _unscientific(text: str) -> str:
    """Expand '9.87654321E9' to '9876543210' when that is an exact phone-sized integer."""
    match = _SCIENTIFIC.fullmatch(text)
    if match is None:
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return text
    if number != number.to_integral_value() or number < 0:
        return text
    digits = str(int(number))
    significant = 1 + len(match.group(2) or "")
    if not _MIN_SCI_DIGITS <= len(digits) <= _MAX_SCI_DIGITS:
        return text
    if len(digits) - significant > _MAX_SCI_PADDING:
        return text
    return digits


def mask_phone(e164: str) -> str:
    """Keep the country code and the last 4 digits: '+91******3210'."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        number = None
    if number is None or number.country_code is None:
        digits = phonenumbers.normalize_digits_only(e164)
        return "*" * max(len(digits) - 4, 0) + digits[-4:]
    national = phonenumbers.national_significant_number(number)
    hidden = max(len(national) - 4, 0)
    return f"+{number.country_code}" + "*" * hidden + national[hidden:]
