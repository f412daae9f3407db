"""Which columns of an uploaded file hold the name, phones, email and marketing consent of a
customer: guessed from the headers, or chosen by the client."""

from __future__ import annotations

import re
from typing import Final

from onboardd.domain.columns import RANK_GENERIC, ColumnMapping, ConsentSource, PhoneSource
from onboardd.importing.headers import consent_source, key, phone_rank
from onboardd.importing.shapes import Shape, detect_shape

__all__ = ["ColumnMapping", "MappingError", "Requested", "describe", "guess", "guess_mapping",
           "mapping_from_request", "request_fields", "require_phone"]

# field -> the header(s) the client chose; '' or [] unmaps the field.
Requested = dict[str, str | list[str]]


class MappingError(ValueError):
    """A column mapping that cannot be used, naming the field and the headers found."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# Synonyms in priority order: the most specific wording wins over vaguer ones.
_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "name": ("Name", "Customer Name", "Full Name", "Client Name", "Display Name",
             "Formatted Name", "Client", "Customer", "FN"),
    "first_name": ("First Name", "Given Name", "First", "Firstname"),
    "middle_name": ("Middle Name", "Additional Name", "Middle"),
    "last_name": ("Last Name", "Surname", "Family Name", "Last"),
    "organisation": ("Organization Name", "Organisation Name", "Organization 1 - Name",
                     "Organization", "Organisation", "Company", "Company Name",
                     "Business Name", "ORG"),
    "email": ("Email", "E-mail", "Email Address", "E-mail Address", "E-mail 1 - Value",
              "Mail"),
}  # fmt: skip
_NAME_PARTS: Final = ("first_name", "middle_name", "last_name")
# Columns that describe an email rather than hold it (Google: "E-mail 1 - Type").
_NOT_VALUES: Final = ("type", "label")
# Companion columns labelling a "... Value" column, e.g. "Phone 1 - Label" for "Phone 1 - Value".
_VALUE_SUFFIX: Final = "value"
_LABEL_SUFFIXES: Final = ("label", "type")

# Request keys of the API and the ColumnMapping field each one sets.
_REQUEST_FIELDS: Final[dict[str, str]] = {
    "name": "name",
    "firstName": "first_name",
    "middleName": "middle_name",
    "lastName": "last_name",
    "organisation": "organisation",
    "organization": "organisation",
    "phone": "phones",
    "email": "email",
    "consent": "consent",
}
_LISTS: Final = ("phones", "consent")
_SPACES = re.compile(r"\s+")


def guess(headers: list[str]) -> tuple[ColumnMapping, Shape | None]:
    """Map the file's headers to customer fields, and name the export shape recognised."""
    shape = detect_shape(headers)
    keys = [key(header) for header in headers]
    used: set[int] = set()
    found: dict[str, int | None] = {}
    for field in ("name", "email", "first_name", "middle_name", "last_name", "organisation"):
        found[field] = _match_synonym(keys, _SYNONYMS[field], used)
    if found["email"] is None:
        found["email"] = _match_contains(keys, "email", used)
    if found["name"] is not None:
        # A full-name column wins; first/last columns are then ordinary extra columns.
        for part in _NAME_PARTS:
            index = found[part]
            if index is not None:
                used.discard(index)
            found[part] = None
    consent = tuple(source for index, header in enumerate(headers)
                    if index not in used and (source := consent_source(header, index)))
    used.update(source.column for source in consent)
    phones = _phone_sources(headers, keys, used, shape)
    return ColumnMapping(
        name=found["name"], first_name=found["first_name"], middle_name=found["middle_name"],
        last_name=found["last_name"], organisation=found["organisation"], phones=phones,
        email=found["email"], consent=consent), shape


def guess_mapping(headers: list[str]) -> ColumnMapping:
    """Map the file's headers to customer fields."""
    return guess(headers)[0]


def _phone_sources(headers: list[str], keys: list[str], used: set[int],
                   shape: Shape | None) -> tuple[PhoneSource, ...]:
    """Every phone-like column not taken by another field, mobiles first, then numbers of
    unknown kind, then home, then work lines; left to right within a kind."""
    extra = shape.extra_phones if shape is not None else {}
    sources: list[PhoneSource] = []
    for index, header in enumerate(headers):
        if index in used:
            continue
        rank = extra.get(keys[index])
        if rank is None:
            rank = phone_rank(header)
        if rank is not None:
            sources.append(PhoneSource(column=index, rank=rank,
                                       label=_label_column(keys, index)))
    sources.sort(key=lambda source: source.rank)
    return tuple(sources)


def _label_column(keys: list[str], index: int) -> int | None:
    """The column labelling a "... Value" column, if the file has one."""
    value_key = keys[index]
    if not value_key.endswith(_VALUE_SUFFIX):
        return None
    stem = value_key[: -len(_VALUE_SUFFIX)]
    for suffix in _LABEL_SUFFIXES:
        if stem + suffix in keys:
            return keys.index(stem + suffix)
    return None


def _match_synonym(keys: list[str], synonyms: tuple[str, ...], used: set[int]) -> int | None:
    """Leftmost unused column equal to the highest-priority synonym present."""
    for synonym in synonyms:
        wanted = key(synonym)
        for index, candidate in enumerate(keys):
            if candidate == wanted and index not in used:
                used.add(index)
                return index
    return None


def _match_contains(keys: list[str], word: str, used: set[int]) -> int | None:
    """Leftmost unused column whose header contains the word (and is not its type/label)."""
    for index, candidate in enumerate(keys):
        if index in used or any(bad in candidate for bad in _NOT_VALUES):
            continue
        if word in candidate:
            used.add(index)
            return index
    return None


def mapping_from_request(headers: list[str], requested: Requested,
                         guessed: ColumnMapping | None = None) -> ColumnMapping:
    """Apply the client's field -> header choices on top of the guessed mapping (`guessed`,
    when the caller has it already). A list of phone columns is tried in the client's order."""
    chosen: dict[str, list[int]] = {}
    for request_key, choice in requested.items():
        field = _REQUEST_FIELDS.get(request_key)
        if field is None:
            known = ", ".join(k for k in _REQUEST_FIELDS if k != "organization")
            raise MappingError(request_key,
                               f"Unknown field '{request_key}'. Fields are: {known}.")
        names = choice if isinstance(choice, list) else [choice]
        if len(names) > 1 and field not in _LISTS:
            raise MappingError(request_key, f"Choose one column for {request_key}, "
                               f"not {len(names)}. Only phone and consent take a list.")
        chosen[field] = [index for name in names
                         if (index := _find_header(headers, name, request_key)) is not None]
    _reject_shared_columns(chosen, headers)
    if guessed is None:
        guessed = guess_mapping(headers)
    taken = {index for indices in chosen.values() for index in indices}
    fields: dict[str, object] = {}
    for field in ("name", *_NAME_PARTS, "organisation", "email"):
        if field in chosen:
            fields[field] = chosen[field][0] if chosen[field] else None
        else:
            index = getattr(guessed, field)
            # A guessed column the client assigned to another field must not stay mapped.
            fields[field] = None if index in taken else index
    if "name" in chosen:
        for part in _NAME_PARTS:
            if part not in chosen:
                fields[part] = None
    elif any(part in chosen for part in _NAME_PARTS):
        fields["name"] = None
    if "phones" in chosen:
        fields["phones"] = tuple(PhoneSource(column=i, rank=_rank_or_generic(headers[i]))
                                 for i in chosen["phones"])
        fields["by_label"] = False
    else:
        fields["phones"] = tuple(s for s in guessed.phones if s.column not in taken)
    if "consent" in chosen:
        fields["consent"] = tuple(consent_source(headers[i], i) or ConsentSource(column=i)
                                  for i in chosen["consent"])
    else:
        fields["consent"] = tuple(s for s in guessed.consent if s.column not in taken)
    return ColumnMapping(**fields)  # type: ignore[arg-type]


def _rank_or_generic(header: str) -> int:
    rank = phone_rank(header)
    return RANK_GENERIC if rank is None else rank


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


def _reject_shared_columns(chosen: dict[str, list[int]], headers: list[str]) -> None:
    """One column cannot feed two fields (nor be listed twice for one)."""
    owners: dict[int, str] = {}
    for field, indices in chosen.items():
        name = "phone" if field == "phones" else field
        for index in indices:
            if index in owners:
                raise MappingError(
                    name,
                    f"Column '{headers[index]}' is chosen for both {owners[index]} and {name}. "
                    "Pick a different column for one of them.",
                )
            owners[index] = name


def describe(
    mapping: ColumnMapping, headers: list[str]
) -> tuple[dict[str, str | list[str]], list[str]]:
    """The mapping as field -> header name(s) for JSON, and the unmapped headers."""
    used: dict[str, str | list[str]] = {}
    if mapping.name is not None:
        used["name"] = headers[mapping.name]
    else:
        parts = [headers[i] for i in (mapping.first_name, mapping.middle_name,
                                      mapping.last_name) if i is not None]
        if parts:
            used["name"] = parts
    if mapping.organisation is not None:
        used["organisation"] = headers[mapping.organisation]
    phones = [headers[source.column] for source in mapping.phones]
    if phones:
        used["phone"] = phones[0] if len(phones) == 1 else phones
    if mapping.email is not None:
        used["email"] = headers[mapping.email]
    if mapping.consent:
        used["consent"] = [headers[source.column] for source in mapping.consent]
    mapped = mapping.columns()
    unmapped = [header for index, header in enumerate(headers) if index not in mapped]
    return used, unmapped


def request_fields(mapping: ColumnMapping, headers: list[str]
                   ) -> dict[str, str | list[str] | None]:
    """The mapping as a request would choose it: every field, None when unmapped, phone and
    consent as lists in the order they are tried."""

    def header(index: int | None) -> str | None:
        return None if index is None else headers[index]

    return {
        "name": header(mapping.name), "firstName": header(mapping.first_name),
        "middleName": header(mapping.middle_name), "lastName": header(mapping.last_name),
        "organisation": header(mapping.organisation),
        "phone": [headers[source.column] for source in mapping.phones],
        "email": header(mapping.email),
        "consent": [headers[source.column] for source in mapping.consent],
    }


def require_phone(mapping: ColumnMapping, headers: list[str]) -> None:
    """Raise MappingError when no column holds phone numbers."""
    if not mapping.phones:
        raise MappingError(
            "phone",
            "No phone number column was found. Name the column 'Phone' or 'Mobile', "
            f"or choose it in the column mapping. Columns found: {_listing(headers)}.",
        )


def _listing(headers: list[str]) -> str:
    """Headers quoted and comma-separated for messages."""
    return ", ".join(f"'{header}'" for header in headers) or "none"
