"""Which column of an uploaded file holds the name, phone and email of a customer."""

from __future__ import annotations

import re
from typing import Final

import msgspec


class ColumnMapping(msgspec.Struct, frozen=True):
    """Column indices of each customer field; None when the file has no such column."""

    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    phone: int | None = None
    email: int | None = None


class MappingError(ValueError):
    """A column mapping that cannot be used, naming the field and the headers found."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# Synonyms in priority order: the most specific wording wins over vaguer ones such as
# "Contact", which some sheets use for the person rather than the number.
_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "name": ("Name", "Customer Name", "Full Name", "Client Name", "Client", "Customer"),
    "first_name": ("First Name", "Given Name", "First"),
    "last_name": ("Last Name", "Surname", "Family Name", "Last"),
    "phone": (
        "Mobile Number", "Mobile No.", "Mobile", "Phone Number", "Phone", "WhatsApp Number",
        "WhatsApp", "Cell Phone", "Cell", "Phone 1 - Value", "Telephone", "Contact No",
        "Contact Number", "Contact",
    ),
    "email": ("Email", "E-mail", "Email Address", "E-mail 1 - Value", "Mail"),
}  # fmt: skip

# Fallback words for headers such as "Customer Mobile (WhatsApp)" that no synonym names.
_CONTAINS: Final[dict[str, tuple[str, ...]]] = {
    "phone": ("mobile", "phone", "whatsapp"),
    "email": ("email",),
}
# Columns that describe a phone or email rather than hold it (Google: "Phone 1 - Type").
_NOT_VALUES: Final = ("type", "label")

# Request keys of the API and the ColumnMapping field each one sets.
_REQUEST_FIELDS: Final[dict[str, str]] = {
    "name": "name",
    "firstName": "first_name",
    "lastName": "last_name",
    "phone": "phone",
    "email": "email",
}

_NON_ALNUM = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")


def _key(header: str) -> str:
    """Compare headers ignoring case, spaces and punctuation."""
    return _NON_ALNUM.sub("", header.casefold())


def guess_mapping(headers: list[str]) -> ColumnMapping:
    """Map the file's headers to customer fields by synonyms."""
    keys = [_key(header) for header in headers]
    used: set[int] = set()
    found: dict[str, int | None] = {}
    for field in ("name", "phone", "email", "first_name", "last_name"):
        found[field] = _match_synonym(keys, _SYNONYMS[field], used)
    for field, words in _CONTAINS.items():
        if found[field] is None:
            found[field] = _match_contains(keys, words, used)
    if found["name"] is not None:
        # A full-name column wins; first/last columns are then ordinary extra columns.
        for part in ("first_name", "last_name"):
            found[part] = None
    return ColumnMapping(**found)


def _match_synonym(keys: list[str], synonyms: tuple[str, ...], used: set[int]) -> int | None:
    """Leftmost unused column equal to the highest-priority synonym present."""
    for synonym in synonyms:
        wanted = _key(synonym)
        for index, key in enumerate(keys):
            if key == wanted and index not in used:
                used.add(index)
                return index
    return None


def _match_contains(keys: list[str], words: tuple[str, ...], used: set[int]) -> int | None:
    """Leftmost unused column whose header contains one of the words."""
    for index, key in enumerate(keys):
        if index in used or any(bad in key for bad in _NOT_VALUES):
            continue
        if any(word in key for word in words):
            used.add(index)
            return index
    return None


def mapping_from_request(headers: list[str], requested: dict[str, str]) -> ColumnMapping:
    """Apply the client's field -> header choices on top of the guessed mapping."""
    chosen: dict[str, int | None] = {}
    for request_key, header in requested.items():
        field = _REQUEST_FIELDS.get(request_key)
        if field is None:
            raise MappingError(
                request_key,
                f"Unknown field '{request_key}'. Fields are: {', '.join(_REQUEST_FIELDS)}.",
            )
        chosen[field] = _find_header(headers, header, request_key)
    _reject_shared_columns(chosen, headers)
    found = msgspec.structs.asdict(guess_mapping(headers))
    if "name" in chosen:
        found["first_name"] = found["last_name"] = None
    elif "first_name" in chosen or "last_name" in chosen:
        found["name"] = None
    found.update(chosen)
    # A guessed column the client assigned to another field must not stay mapped twice.
    taken = {index for index in chosen.values() if index is not None}
    for field, index in found.items():
        if field not in chosen and index in taken:
            found[field] = None
    return ColumnMapping(**found)


def _find_header(headers: list[str], header: str | None, request_key: str) -> int | None:
    """Index of the header the client named; an empty choice unmaps the field."""
    if header is None or not header.strip():
        return None
    wanted = _SPACES.sub("", header.casefold())
    for index, candidate in enumerate(headers):
        if _SPACES.sub("", candidate.casefold()) == wanted:
            return index
    raise MappingError(
        request_key,
        f"Column '{header}' chosen for {request_key} is not in the file. "
        f"Columns found: {_listing(headers)}.",
    )


def _reject_shared_columns(chosen: dict[str, int | None], headers: list[str]) -> None:
    """One column cannot feed two fields."""
    owners: dict[int, str] = {}
    for field, index in chosen.items():
        if index is None:
            continue
        if index in owners:
            raise MappingError(
                field,
                f"Column '{headers[index]}' is chosen for both {owners[index]} and {field}. "
                "Pick a different column for one of them.",
            )
        owners[index] = field


def describe(
    mapping: ColumnMapping, headers: list[str]
) -> tuple[dict[str, str | list[str]], list[str]]:
    """The mapping as field -> header name(s) for JSON, and the unmapped headers."""
    used: dict[str, str | list[str]] = {}
    if mapping.name is not None:
        used["name"] = headers[mapping.name]
    else:
        parts = [headers[i] for i in (mapping.first_name, mapping.last_name) if i is not None]
        if parts:
            used["name"] = parts
    for field, index in (("phone", mapping.phone), ("email", mapping.email)):
        if index is not None:
            used[field] = headers[index]
    mapped = {mapping.name, mapping.first_name, mapping.last_name, mapping.phone, mapping.email}
    unmapped = [header for index, header in enumerate(headers) if index not in mapped]
    return used, unmapped


def require_phone(mapping: ColumnMapping, headers: list[str]) -> None:
    """Raise MappingError when no column holds phone numbers."""
    if mapping.phone is None:
        raise MappingError(
            "phone",
            "No phone number column was found. Name the column 'Phone' or 'Mobile', "
            f"or choose it in the column mapping. Columns found: {_listing(headers)}.",
        )


def _listing(headers: list[str]) -> str:
    """Headers quoted and comma-separated for messages."""
    return ", ".join(f"'{header}'" for header in headers) or "none"
