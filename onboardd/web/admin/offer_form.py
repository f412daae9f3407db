"""The welcome-offer form of the admin UI, without I/O: what was typed (rupees and percents)
read into the service's OfferInput (paisa), and every problem as a sentence for its field.

The service (onboardd.domain.offers.validate_offer_input) names fields by their API names
(`discountValue`, `maxDiscountInPaisa`, ...); here each becomes the form field it is shown
next to, said in rupees rather than paisa.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from onboardd.domain.money import format_rupees
from onboardd.domain.offers import (
    DISCOUNT_TYPES,
    INT32_MAX,
    FieldError,
    Offer,
    OfferInput,
    validate_offer_input,
)

# Form field -> the service's name for it.
SERVICE_NAMES: Final = {
    "name": "name", "discount_type": "discountType", "value": "discountValue",
    "max_discount": "maxDiscountInPaisa", "minimum_bill": "minimumPurchaseInPaisa",
    "validity_days": "validityDays", "usage_limit": "usageLimit"}
FORM_NAMES: Final = {service: form for form, service in SERVICE_NAMES.items()}
TEXT_FIELDS: Final = tuple(SERVICE_NAMES)
# An error that names no field of the form (shown above the form).
GENERAL: Final = "form"
DEFAULTS: Final = {"name": "", "discount_type": "fixed", "value": "", "max_discount": "",
                   "minimum_bill": "", "validity_days": "30", "usage_limit": "1"}

TYPE_SENTENCE: Final = "Choose a fixed amount or a percentage."
NUL_IN_NAME: Final = ("The name has an invisible character in it (NUL) that cannot be saved. "
                      "Type the name again.")
# The fields that make up the "Customers will read" line, in the order their problem is said.
PREVIEW_FIELDS: Final = ("discount_type", "value", "max_discount", "minimum_bill")

_AMOUNT = re.compile(r"(\d{1,12})(?:\.(\d{1,2}))?")
_WHOLE = re.compile(r"\d{1,12}")
_MOST = format_rupees(INT32_MAX)


class Preview(msgspec.Struct, frozen=True):
    """The "Customers will read" line: the offer the form describes when the service would
    take it, else the first problem with it in words (neither while the discount is empty)."""

    offer: Offer | None = None
    problem: str | None = None


class OfferForm(msgspec.Struct, frozen=True):
    """A submitted offer form: what was typed (shown again), the offer as the service takes it
    (0 or None where a field could not be read) and the problem of each field."""

    values: dict[str, str]
    is_active: bool
    data: OfferInput
    errors: dict[str, str]


def _clean(text: str) -> str:
    return text.replace("₹", "").replace(",", "").replace(" ", "").strip()


def rupees_to_paisa(text: str) -> int:
    """'100' -> 10000, '99.50' and '99.5' -> 9950, '₹1,000' -> 100000; ValueError otherwise."""
    found = _AMOUNT.fullmatch(_clean(text))
    if found is None:
        raise ValueError(text)
    return int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))


def paisa_to_rupees(paisa: int | None) -> str:
    """The amount as the form shows it: '100', '99.50' (empty for none)."""
    if paisa is None:
        return ""
    rupees, paise = divmod(paisa, 100)
    return f"{rupees}.{paise:02d}" if paise else str(rupees)


def form_values(offer: Offer) -> dict[str, str]:
    """A stored offer as the edit form shows it."""
    value = (paisa_to_rupees(offer.discount_value) if offer.discount_type == "fixed"
             else str(offer.discount_value))
    return {"name": offer.name, "discount_type": offer.discount_type, "value": value,
            "max_discount": paisa_to_rupees(offer.max_discount_in_paisa),
            "minimum_bill": paisa_to_rupees(offer.minimum_purchase_in_paisa),
            "validity_days": str(offer.validity_days), "usage_limit": str(offer.usage_limit)}


def _amount(values: dict[str, str], field: str, errors: dict[str, str], *,
            required: bool) -> int | None:
    text = values[field]
    if not _clean(text):
        if required:
            errors[field] = "Enter the amount in rupees, such as 100 or 99.50."
        return None
    try:
        return rupees_to_paisa(text)
    except ValueError:
        errors[field] = ("Write the amount in rupees with digits and at most two after the "
                         "point, such as 100 or 99.50.")
        return None


def _value(values: dict[str, str], errors: dict[str, str]) -> int:
    kind = values["discount_type"]
    if kind == "fixed":
        return _amount(values, "value", errors, required=True) or 0
    if kind not in DISCOUNT_TYPES:  # the value cannot be read without its kind
        return 0
    text = _clean(values["value"]).removesuffix("%")
    if not text:
        errors["value"] = "Enter the discount: a whole percent from 1 to 100, such as 15."
    elif not _WHOLE.fullmatch(text):
        errors["value"] = "Write a whole percent from 1 to 100 with digits, such as 15."
    else:
        return int(text)
    return 0


def _whole(values: dict[str, str], field: str, errors: dict[str, str]) -> int:
    text = _clean(values[field])
    if _WHOLE.fullmatch(text):
        return int(text)
    errors[field] = field_sentence(field, "", "")
    return 0


def field_sentence(field: str, kind: str, fallback: str) -> str:
    """What to do about a form field the service refused, in the form's own units."""
    if field == "discount_type":
        return TYPE_SENTENCE
    if field == "value":
        if kind == "percentage":
            return "Enter a whole percent from 1 to 100, such as 15."
        return f"Enter an amount above ₹0 and at most {_MOST}, such as 100 or 99.50."
    if field == "max_discount":
        if kind == "fixed":
            return ("A cap applies only to a percentage: leave it empty for a fixed amount.")
        return f"Enter a cap above ₹0 and at most {_MOST}, or leave it empty for no cap."
    if field == "minimum_bill":
        return f"Enter a minimum bill of at most {_MOST}, or leave it empty for no minimum."
    if field == "validity_days":
        return "Enter a number of days from 1 to 365."
    if field == "usage_limit":
        return "Enter how many times each customer may use it: a whole number, 1 or more."
    return fallback


def _name_sentence(error: FieldError, name: str) -> str:
    if not name.strip():
        return "Give the offer a name, such as “Welcome ₹100 off”."
    if len(name) > 255:
        return f"Use at most 255 characters for the name (this one has {len(name)})."
    return error.message


def service_errors(data: OfferInput, errors: list[dict[str, Any]] | list[FieldError]
                   ) -> dict[str, str]:
    """The service's field errors (`details.errors`, or the domain's FieldErrors) by form
    field, in words for the form."""
    shown: dict[str, str] = {}
    for error in errors:
        found = error if isinstance(error, FieldError) else FieldError(
            str(error.get("field", "")), str(error.get("message", "")))
        field = FORM_NAMES.get(found.field, GENERAL)
        sentence = (_name_sentence(found, data.name) if found.field == "name"
                    else field_sentence(field, data.discount_type, found.message))
        shown.setdefault(field, sentence)
    return shown


def read_form(form: Mapping[str, Any], *, editing: bool = False) -> OfferForm:
    """The submitted form, read; every problem found without the database (the ones of
    reading, then the service's own rules on the fields that could be read). A new offer is
    active; the edit form has an Active checkbox."""
    values = {field: str(form.get(field, "")).strip() if field != "name"
              else str(form.get(field, "")) for field in TEXT_FIELDS}
    errors: dict[str, str] = {}
    if "\x00" in values["name"]:  # PostgreSQL text cannot hold it
        errors["name"] = NUL_IN_NAME
    kind = values["discount_type"]
    if kind not in DISCOUNT_TYPES:
        errors["discount_type"] = TYPE_SENTENCE
    data = OfferInput(
        name=values["name"], discount_type=kind, discount_value=_value(values, errors),
        max_discount_in_paisa=_amount(values, "max_discount", errors, required=False),
        minimum_purchase_in_paisa=_amount(values, "minimum_bill", errors, required=False),
        validity_days=_whole(values, "validity_days", errors),
        usage_limit=_whole(values, "usage_limit", errors),
        is_active=form.get("is_active") == "on" if editing else True)
    if errors:  # the service is not asked; its rules still speak for the other fields
        for field, sentence in service_errors(data, validate_offer_input(data)).items():
            errors.setdefault(field, sentence)
    return OfferForm(values=values, is_active=data.is_active, data=data, errors=errors)


def preview_offer(form: Mapping[str, Any]) -> Preview:
    """How customers will read the offer the form describes so far: only an offer the
    service's own rules accept (never "500%"), else the first problem in words."""
    read = read_form({**DEFAULTS, **form, "name": "preview", "validity_days": "30",
                      "usage_limit": "1"})
    data = read.data
    errors = read.errors or service_errors(data, validate_offer_input(data))
    if not errors:
        return Preview(offer=Offer(
            id="", discount_type=data.discount_type, discount_value=data.discount_value,
            max_discount_in_paisa=data.max_discount_in_paisa,
            minimum_purchase_in_paisa=data.minimum_purchase_in_paisa,
            validity_days=30, usage_limit=1, is_active=True))
    if "value" in errors and not _clean(read.values["value"]) and "discount_type" not in errors:
        return Preview()  # nothing typed yet: the line says to enter the discount
    return Preview(problem=next((errors[f] for f in PREVIEW_FIELDS if f in errors),
                                errors.get(GENERAL)))
