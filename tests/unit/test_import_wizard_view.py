"""The import wizard's words and dropdowns (pure logic): a Google export's several phone columns
stay with the automatic mapping (ordered by each row's label) until one is chosen, what the
dropdowns send, the quality summary's partition, and the refusals in words."""

from __future__ import annotations

import datetime as dt

from onboardd.importing import quality_words
from onboardd.importing.files import read_table
from onboardd.importing.mapping import guess, mapping_from_request, request_fields
from onboardd.importing.preview import ConsentSummary, Preview
from onboardd.importing.quality import file_quality, summarise
from onboardd.web.admin import import_view as view
from onboardd.web.admin.formats import problem_sentence
from tests.export_shapes import GOOGLE_HEADERS
from tests.web.messy_import import EXISTING, MESSY_CSV


def preview_of(headers: list[str], requested: dict[str, str | list[str]] | None = None
               ) -> Preview:
    mapping = guess(headers)[0]
    if requested:
        mapping = mapping_from_request(headers, requested, mapping)
    return Preview(
        batch_id="b", status="preview", file_name="contacts.csv", file_kind="csv",
        detected_source=None, detected_source_label=None, total_rows=0, columns=headers,
        mapping={}, unmapped_columns=[], consent=ConsentSummary([], "assume"), preview=[],
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        mapping_fields=request_fields(mapping, headers))


def form_of(preview: Preview) -> dict[str, str]:
    return {c.key: c.selected for c in view.choices(preview)}


def test_a_google_export_keeps_its_labelled_phone_columns_until_one_is_chosen() -> None:
    preview = preview_of(GOOGLE_HEADERS)
    form = form_of(preview)
    assert form["phone"] == view.AUTO and form["phone2"] == ""
    assert (form["firstName"], form["lastName"]) == ("col:First Name", "col:Last Name")
    phone = next(c for c in view.choices(preview) if c.key == "phone")
    assert phone.options[0][1].startswith("Every phone column found: Phone 1 - Value, "
                                          "Phone 2 - Value, Phone 3 - Value")
    requested = view.requested_from_form(form)
    assert "phone" not in requested and requested["consent"] == ""  # the file has none
    again = mapping_from_request(GOOGLE_HEADERS, requested, guess(GOOGLE_HEADERS)[0])
    assert again == guess(GOOGLE_HEADERS)[0]  # unchanged, rows' labels still order phones
    chosen = view.requested_from_form({**form, "phone": "col:Phone 2 - Value",
                                       "phone2": "col:Phone 1 - Value"})
    assert chosen["phone"] == ["Phone 2 - Value", "Phone 1 - Value"]
    shown = form_of(preview_of(GOOGLE_HEADERS, chosen))
    assert (shown["phone"], shown["phone2"]) == ("col:Phone 2 - Value", "col:Phone 1 - Value")


def test_what_the_dropdowns_send() -> None:
    form = {"name": "col:Client", "firstName": "", "phone": "col:Mobile",
            "phone2": "col:Mobile", "consent": "", "email": "nonsense"}
    assert view.requested_from_form(form) == {
        "name": "Client", "firstName": "", "middleName": "", "lastName": "",
        "organisation": "", "email": "", "phone": ["Mobile"], "consent": ""}
    assert view.requested_from_form({"phone": ""})["phone"] == []
    assert view.problem_field({"field": "mapping.first_name"}) == "firstName"
    assert view.problem_field({}) == "phone"


def test_the_quality_summary_partitions_the_file() -> None:
    table = read_table("csv", MESSY_CSV.encode(), max_rows=100)
    mapping = guess(table.headers)[0]
    quality = summarise(file_quality(table, mapping, "IN", "require"), set(EXISTING),
                        "require")
    assert (quality.will_import + quality.duplicates_in_file + quality.already_customers
            + quality.invalid_rows) == quality.total_rows == 13
    assert quality.imported_opted_out == quality.consent_no + quality.consent_blank
    assert quality_words.quality_lead(quality) == "5 of 13 rows will be imported."
    assert "2 rows have an invalid phone number." in quality_words.quality_lines(quality)
    assert quality_words.consent_sentence(quality, []).startswith(
        "Consent: no consent column, so every customer's consent is blank. A blank consent "
        "counts as no")


def test_refusals_in_words() -> None:
    now = dt.datetime(2026, 1, 1, 6, 30, tzinfo=dt.UTC)
    assert view.retry_sentence("uploaded a customer file", {"limit": 30}, 90, "Asia/Kolkata",
                               now) == (
        "This salon has uploaded a customer file 30 times in the last hour, the most allowed. "
        "Try again in 2 minutes (after 12:01).")
    assert view.upload_sentence(413, None, "", {}, max_bytes=5 * 1024 * 1024,
                                retry_after_s=None, timezone="UTC").startswith(
        "This file is larger than the 5 MB limit.")
    assert problem_sentence("file: the uploaded file is empty") == "The uploaded file is empty"
    assert problem_sentence("Files of type '.pdf': no") == "Files of type '.pdf': no"
