"""Which E.164 number a phone means, for matching imported customers: one reading, one region.

Imported customers are stored as E.164 numbers, each read with the region of the import that
brought it in. A phone from the app side is read once, with its own region, and matched by
E.164 equality only; it is never re-read with another salon's region to make a match:

- a user's stored phone (``users.phone``) in international form (``+``, ``00`` or more than
  10 digits with the country code) is that number; in national form it is read with
  ``[offers] phone_region`` (the app's home region), and not at all when that is empty;
- a number the user types into the app is read with the caller's own region: the country of
  their stored phone when it is in international form, else ``[offers] phone_region``.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException

from onboardd.domain.phones import PhoneError, normalize_phone

# normalize_phone with this region reads only numbers that carry their country code.
NO_REGION = ""


def user_number(phone: str | None, default_region: str) -> str | None:
    """The E.164 number of a user's stored phone (national form read with default_region, and
    not at all when it is ""), else None."""
    if not phone:
        return None
    try:
        return normalize_phone(phone, default_region or NO_REGION)
    except PhoneError:
        return None


def caller_region(own_number: str | None, default_region: str) -> str:
    """The region a caller's typed numbers are read with: their own number's, else the default."""
    if own_number is not None:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(own_number, None))
        except NumberParseException:  # pragma: no cover - own_number is valid E.164
            region = None
        if region and region != "001":  # "001": a non-geographic number has no region
            return str(region)
    return default_region
