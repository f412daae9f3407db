"""What the import wizard shows, in words: the column dropdowns and what they send, the quality
summary as sentences, the problems an upload or a confirm can meet, and the sample file. Pure
functions of the service's answers; onboardd.web.admin.imports does the I/O."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from onboardd.domain.masking import mask_digits
from onboardd.importing.mapping import Requested, guess, request_fields
from onboardd.importing.preview import Preview, PreviewRow
from onboardd.importing.quality_words import counted
from onboardd.web.admin.formats import problem_sentence

# Option values of the column dropdowns: "" maps nothing, AUTO keeps every column the automatic
# mapping found (phone and consent), COLUMN + a header chooses that column.
AUTO: Final = "auto"
COLUMN: Final = "col:"

# (request key, label, hint) of the one-column fields, in the order shown.
_SINGLE: Final = (
    ("name", "Full name", "The customer's whole name."),
    ("firstName", "First name", "Used when there is no full-name column."),
    ("middleName", "Middle name", "Used when there is no full-name column."),
    ("lastName", "Last name", "Used when there is no full-name column."),
    ("organisation", "Organisation",
     "Used as the name of a contact who has no personal name."),
    ("email", "Email", "Optional."),
)
# MappingError fields that are ColumnMapping names rather than request keys.
_FIELD_KEYS: Final = {"first_name": "firstName", "middle_name": "middleName",
                      "last_name": "lastName", "organization": "organisation"}

SAMPLE_ROWS: Final = (
    ("Name", "Mobile", "Email", "Accepts Marketing"),
    ("Priya Sharma", "+91 98765 43210", "priya.sharma@example.com", "yes"),
    ("Rahul Verma", "+91 99001 23456", "", "yes"),
    ("Ananya Iyer", "+91 87654 32109", "ananya.iyer@example.com", ""),
    ("Mohammed Khan", "+91 70123 45678", "", "yes"),
)


class Choice(msgspec.Struct, frozen=True):
    """One column dropdown: its form name, label, hint, options (value, text) and the value
    selected."""

    key: str
    label: str
    hint: str
    options: list[tuple[str, str]]
    selected: str


def _value(header: str | None) -> str:
    return COLUMN + header if header else ""


def _is_automatic(in_force: list[str], guessed: list[str], taken: set[str]) -> bool:
    """The automatic mapping's columns (those no other field took), several of them, in its
    order: shown as "every column found"."""
    expected = [header for header in guessed if header not in taken]
    return len(expected) > 1 and in_force == expected


def choices(preview: Preview, form: Mapping[str, Any] | None = None) -> list[Choice]:
    """The dropdowns, pre-filled with the mapping in force (or with what the form sent, when
    it was refused and is shown again)."""
    headers = preview.columns
    columns = [(COLUMN + header, header) for header in headers]
    none = [("", "— not in this file —")]
    fields = preview.mapping_fields
    guessed = request_fields(guess(headers)[0], headers)
    shown: list[Choice] = []
    for key, label, hint in _SINGLE:
        chosen = fields.get(key)
        shown.append(Choice(key, label, hint, none + columns,
                            _value(chosen if isinstance(chosen, str) else None)))
    phones = as_list(fields.get("phone"))
    consent = as_list(fields.get("consent"))
    singles = {value for key, _l, _h in _SINGLE if isinstance(value := fields.get(key), str)}
    auto_phones = as_list(guessed.get("phone"))
    auto = _is_automatic(phones, auto_phones, singles | set(consent))
    phone_auto = ([(AUTO, "Every phone column found: " + ", ".join(auto_phones)
                    + " (a mobile number first)")] if len(auto_phones) > 1 else [])
    shown.append(Choice(
        "phone", "Phone number", "The number the invitation goes to. Required.",
        phone_auto + columns + [("", "— none —")],
        AUTO if auto else _value(phones[0] if phones else None)))
    shown.append(Choice(
        "phone2", "Second phone number",
        "Optional: tried when the first column has no mobile number. Not used with "
        "\u201cevery phone column\u201d.", none + columns,
        "" if auto or len(phones) < 2 else _value(phones[1])))
    auto_consent = as_list(guessed.get("consent"))
    consent_auto = ([(AUTO, "Every consent column found: " + ", ".join(auto_consent)
                      + " (any \u201cno\u201d wins)")] if len(auto_consent) > 1 else [])
    shown.append(Choice(
        "consent", "Marketing consent",
        "Whether the customer agreed to receive messages. A \u201cno\u201d imports them opted "
        "out.", [("", "— no consent column —"), *consent_auto, *columns],
        AUTO if _is_automatic(consent, auto_consent, singles | set(phones))
        else _value(consent[0] if consent else None)))
    if form is not None:
        shown = [msgspec.structs.replace(c, selected=str(form.get(c.key, c.selected)))
                 for c in shown]
    return shown


def as_list(value: str | list[str] | None) -> list[str]:
    """A field of mapping_fields as a list of headers."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _column(value: object) -> str:
    """The header an option value names ('' for none)."""
    text = value if isinstance(value, str) else ""
    return text[len(COLUMN):] if text.startswith(COLUMN) else ""


def requested_from_form(form: Mapping[str, Any]) -> Requested:
    """The dropdowns as the service's requested mapping: every one-column field explicitly;
    phone and consent only when not left to the automatic mapping (which orders phone columns
    by each row's labels)."""
    requested: Requested = {key: _column(form.get(key)) for key, _label, _hint in _SINGLE}
    if form.get("phone") != AUTO:
        pair = (_column(form.get("phone")), _column(form.get("phone2")))
        requested["phone"] = [header for header in dict.fromkeys(pair) if header]
    if form.get("consent") != AUTO:
        requested["consent"] = _column(form.get("consent"))
    return requested


def has_mapping(form: Mapping[str, Any]) -> bool:
    """True when the form carries the dropdowns (a confirm sent from the preview)."""
    return "phone" in form


def problem_field(details: Mapping[str, Any]) -> str:
    """The dropdown a mapping problem names ('phone' when it names none)."""
    field = str(details.get("field", "")).removeprefix("mapping.")
    return _FIELD_KEYS.get(field, field) or "phone"


def masked_phone(row: PreviewRow, phone_columns: list[str]) -> str:
    """The row's number with all but its last 4 digits hidden (the cell as written when no
    number could be read)."""
    if row.phone:
        return mask_digits(row.phone)
    for column in phone_columns:
        cell = row.original_data.get(column, "").strip()
        if cell:
            return mask_digits(cell)
    return "—"


def _wait_words(seconds: int) -> str:
    if seconds < 60:
        return counted(seconds, "second", "seconds")
    return counted(math.ceil(seconds / 60), "minute", "minutes")


def retry_sentence(what: str, details: Mapping[str, Any], retry_after_s: int | None,
                   timezone: str, now: dt.datetime | None = None) -> str:
    """A rolling-hour limit reached, with when to try again in the salon's time."""
    wait = max(1, int(retry_after_s or details.get("retryAfterSeconds") or 60))
    at = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=wait)
    clock = at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    limit = details.get("limit")
    most = counted(int(limit), "time", "times") if limit else "as often as allowed"
    return (f"This salon has {what} {most} in the last hour, the most allowed. "
            f"Try again in {_wait_words(wait)} (after {clock}).")


def upload_sentence(status: int, code: str | None, message: str, details: Mapping[str, Any],
                    *, max_bytes: int, retry_after_s: int | None, timezone: str) -> str:
    """Why an upload was refused, as a sentence for the person at the drop zone."""
    if status == 413:
        return (f"This file is larger than the {max_bytes / (1024 * 1024):g} MB limit. Split "
                "the customer list into smaller files and upload them one at a time.")
    if status == 429:
        return retry_sentence("uploaded a customer file", details, retry_after_s, timezone)
    if code == "malformed_upload":
        return ("The file did not arrive whole (the upload was cut off or garbled on the "
                "way). Choose the file and upload it again.")
    if code == "empty_file" and details.get("field") == "file":
        return "The file is empty. Choose the file that holds your customer list."
    if (code == "unsupported_media_type" or message.startswith("file: missing")
            or "no filename" in message):
        return "Choose a file first: your customer list as a .csv, .xlsx or .xls file."
    if code == "mapping_invalid":  # at upload: no column looks like a phone number
        found = ", ".join(f"'{c}'" for c in details.get("columns", [])) or "none"
        return ("No column of this file looks like a phone number (columns found: "
                f"{found}). Name the phone column 'Phone' or 'Mobile' and upload the file "
                "again.")
    return problem_sentence(message)


def sample_csv() -> str:
    """A small file with the headers the automatic mapping recognises."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(SAMPLE_ROWS)
    return out.getvalue()
