"""What a column header (or a phone's label cell) says: is it a phone, of which kind, and is it
a marketing-consent column, and in which sense. Pure functions over header text."""

from __future__ import annotations

import functools
import re
from typing import Final

from onboardd.domain.columns import (
    RANK_GENERIC,
    RANK_HOME,
    RANK_MOBILE,
    RANK_WORK,
    ConsentSource,
)

# A number labelled as a fax or pager is tried after every other one.
RANK_LAST: Final = RANK_WORK + 1

_NON_ALNUM = re.compile(r"[\W_]+")


def key(header: str) -> str:
    """Compare headers ignoring case, spaces and punctuation."""
    return _NON_ALNUM.sub("", header.casefold())


def words(header: str) -> frozenset[str]:
    """The header's words, case-folded."""
    return frozenset(w for w in _NON_ALNUM.split(header.casefold()) if w)


# Words of columns that hold a phone number.
_PHONE_WORDS: Final = frozenset({
    "phone", "phones", "mobile", "mobiles", "cell", "cellphone", "cellular", "whatsapp",
    "telephone", "tel", "mob", "landline", "iphone", "handphone", "ph", "phno", "phoneno",
    "mobileno", "mobilenumber", "phonenumber", "contactno", "contactnumber", "mobno",
})  # fmt: skip
# Whole headers that are a phone although no phone word is in them.
_PHONE_KEYS: Final = frozenset({"contact", "contactno", "contactnum", "contactnumber",
                                "contactphone", "contactmobile"})
# Words of columns that are about a phone without holding the customer's number: its kind, a
# fax or pager, someone else's number, or a consent flag.
_NOT_PHONE_WORDS: Final = frozenset({
    "fax", "pager", "telex", "tty", "tdd", "isdn", "type", "label", "assistant", "assistants",
    "manager", "managers", "emergency", "code", "country", "ext", "extension", "verified",
    "consent", "marketing", "opt", "optin", "optout", "accepts", "subscribed", "unsubscribed",
    "promotions", "notifications", "reminders", "dnd", "method", "status", "blocked",
    "phonetic",
})  # fmt: skip
_MOBILE_WORDS: Final = frozenset({"mobile", "mobiles", "cell", "cellphone", "cellular",
                                  "whatsapp", "iphone", "mob", "mobno", "mobileno",
                                  "mobilenumber", "handphone", "handy"})
_HOME_WORDS: Final = frozenset({"home", "night", "evening", "residence", "house", "landline",
                                "personal"})
_WORK_WORDS: Final = frozenset({"work", "business", "office", "company", "day"})
_FAX_WORDS: Final = frozenset({"fax", "pager", "telex", "tty"})


def _kind_rank(found: frozenset[str], text_key: str) -> int:
    if found & _FAX_WORDS:
        return RANK_LAST
    if found & _MOBILE_WORDS or "mobile" in text_key or "whatsapp" in text_key or (
            "cell" in text_key):
        return RANK_MOBILE
    if found & _HOME_WORDS:
        return RANK_HOME
    if found & _WORK_WORDS:
        return RANK_WORK
    return RANK_GENERIC


def phone_rank(header: str) -> int | None:
    """The kind of number a column holds by its header, or None when it holds no number."""
    found, text_key = words(header), key(header)
    if found & _NOT_PHONE_WORDS:
        return None
    if text_key.startswith("tel") and text_key != "tel" and not text_key.startswith("tele"):
        # vCard names kept by converters: "TEL;TYPE=CELL", "TEL;HOME".
        return _kind_rank(found, text_key)
    if not (found & _PHONE_WORDS or text_key in _PHONE_KEYS or "phone" in text_key
            or "mobile" in text_key or "whatsapp" in text_key):
        return None
    return _kind_rank(found, text_key)


@functools.lru_cache(maxsize=1024)
def label_rank(label: str) -> int | None:
    """The kind a label cell gives its number ("Mobile", "* Home", "Work Fax"); None when the
    cell is blank, so the header decides."""
    text = label.strip().lstrip("*").strip()
    if not text:
        return None
    return _kind_rank(words(text), key(text))


# Consent columns. A negated column ("Blocked") says yes to mean "do not message". Columns
# about e-mail, or about messages other than marketing, say nothing about SMS or WhatsApp.
_NEGATED_KEYS: Final = ("unsubscribe", "donotcontact", "donotdisturb", "donottext", "donotsms",
                        "donotmessage", "donotmarket", "donotcall", "optedout", "optout",
                        "nomarketing", "blocked", "blacklisted", "blocklisted", "banned")
_BLOCK_KEYS: Final = ("blocked", "blacklisted", "blocklisted", "banned")
_POSITIVE_KEYS: Final = (
    "acceptsmarketing", "acceptssms", "acceptswhatsapp", "acceptstext", "marketingconsent",
    "smsconsent", "whatsappconsent", "textconsent", "marketingoptin", "smsoptin",
    "whatsappoptin", "optin", "optedin", "subscribed", "smspromotions", "textmessagepromotions",
    "textpromotions", "whatsapppromotions", "receivemarketing", "receivesmsmarketing",
    "receivepromotions", "allowmarketing", "allowsms", "allowwhatsapp", "marketingallowed",
    "marketingpermission", "smsmarketing", "whatsappmarketing", "marketingsms",
)  # fmt: skip
_POSITIVE_EXACT: Final = frozenset({"consent", "marketing", "optin", "promotions"})
_NEGATED_WORDS: Final = frozenset({"dnd"})
_NOT_CONSENT_WORDS: Final = frozenset({"reason", "source", "by", "note", "notes", "channel",
                                       "method", "type", "transactional", "reminder",
                                       "reminders", "newsletter", "post", "postal", "letter"})


def consent_source(header: str, column: int) -> ConsentSource | None:
    """The consent column a header names, with its sense, or None."""
    found, text_key = words(header), key(header)
    if found & _NOT_CONSENT_WORDS or "mail" in text_key:
        return None
    if found & _NEGATED_WORDS or any(k in text_key for k in _NEGATED_KEYS):
        reason = "blocked" if any(k in text_key for k in _BLOCK_KEYS) else "unsubscribed"
        return ConsentSource(column=column, negated=True, reason=reason)
    if text_key in _POSITIVE_EXACT or any(k in text_key for k in _POSITIVE_KEYS):
        return ConsentSource(column=column)
    return None
