"""Known export shapes (contact apps and salon software), recognised by their headers.

The generic header rules map every shape below; recognising one names it in the preview
(`detectedSource`) and adds what only that shape means, such as the bare "Home" and "Work"
phone columns of an iPhone contacts export.
"""

from __future__ import annotations

from typing import Final

import msgspec

from onboardd.domain.columns import RANK_GENERIC, RANK_HOME, RANK_MOBILE, RANK_WORK
from onboardd.importing.headers import key


class Shape(msgspec.Struct, frozen=True):
    """One export layout: the header keys that identify it (all of `needs`, and one of
    `needs_any` when given) and phone columns by exact header key beyond the generic rules."""

    slug: str
    label: str
    needs: frozenset[str]
    needs_any: frozenset[str] = frozenset()
    extra_phones: dict[str, int] = {}


_IPHONE_PHONES: Final = {"mobile": RANK_MOBILE, "iphone": RANK_MOBILE, "main": RANK_GENERIC,
                         "other": RANK_GENERIC, "home": RANK_HOME, "work": RANK_WORK}

# Most specific first: the first shape whose headers are all present wins.
SHAPES: Final = (
    Shape("google-contacts", "Google Contacts",
          frozenset({"firstname", "lastname", "phone1label", "phone1value"})),
    Shape("google-contacts-legacy", "Google Contacts (older layout)",
          frozenset({"name", "givenname", "familyname", "phone1type", "phone1value"})),
    Shape("outlook", "Outlook",
          frozenset({"firstname", "lastname", "mobilephone", "homephone", "businessphone",
                     "emailaddress"})),
    Shape("fresha", "Fresha", frozenset({"blocked", "blockreason", "acceptsmarketing"})),
    Shape("vagaro", "Vagaro", frozenset({"cellphone", "dayphone", "nightphone"})),
    Shape("zenoti", "Zenoti", frozenset({"guestcode", "mobilephone"})),
    Shape("phorest", "Phorest", frozenset({"mobile", "landline", "smsmarketingconsent"})),
    Shape("salonist", "Salonist", frozenset({"mobileno", "alternatemobileno"})),
    Shape("phone-contacts", "Phone contacts (iPhone)", frozenset({"iphone"}),
          extra_phones=_IPHONE_PHONES),
    Shape("phone-contacts", "Phone contacts (Android)", frozenset({"displayname"}),
          needs_any=frozenset({"mobilephone", "mobile", "phone", "phone1value"})),
)


def detect_shape(headers: list[str]) -> Shape | None:
    """The known layout these headers come from, or None."""
    keys = {key(header) for header in headers}
    for shape in SHAPES:
        if shape.needs <= keys and (not shape.needs_any or shape.needs_any & keys):
            return shape
    return None
