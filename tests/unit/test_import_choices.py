"""Choosing among several numbers, reading consent values, and cleaning names (pure logic)."""

from __future__ import annotations

import pytest

from onboardd.domain.columns import RANK_HOME, RANK_MOBILE, ColumnMapping, ConsentSource
from onboardd.domain.columns import PhoneSource as P
from onboardd.domain.names import clean_name, greeting_name
from onboardd.domain.phones import INVALID_PHONE, NOT_MOBILE
from onboardd.importing.consent import read_flag, verdict
from onboardd.importing.phone_choice import choose_phone, split_numbers
from onboardd.importing.rows import DUPLICATE_PHONE, mark_in_file_duplicates, validate_row


@pytest.mark.parametrize(
    ("cell", "numbers"),
    [("098765 43211 ::: +91 80 2345 6789", ["098765 43211", "+91 80 2345 6789"]),
     ("98765 43211;98765 43212", ["98765 43211", "98765 43212"]),
     ("98765 43211\n98765 43212", ["98765 43211", "98765 43212"]),
     ("98765 43211 / 98765 43212", ["98765 43211", "98765 43212"]),
     ("98765 43211, 98765 43212", ["98765 43211", "98765 43212"]),
     ("022/2345678", ["022/2345678"]),
     ("98765 43211", ["98765 43211"])],
)  # fmt: skip
def test_split_numbers(cell: str, numbers: list[str]) -> None:
    assert split_numbers(cell) == numbers


GOOGLE = ["Phone 1 - Label", "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value"]
GOOGLE_MAPPING = ColumnMapping(phones=(P(1, label=0), P(3, label=2)))


def test_a_mobile_label_is_tried_before_an_earlier_home_number() -> None:
    cells = ["Home", "+91 98765 43299", "Mobile", "98765 43212"]
    choice = choose_phone(cells, GOOGLE_MAPPING, GOOGLE, "IN")
    # Both are mobiles by their digits; the labels decide which is the customer's mobile.
    assert (choice.e164, choice.column, choice.value) == ("+919876543212", 3, "98765 43212")


def test_a_landline_first_then_a_mobile() -> None:
    cells = ["Home", "+91 80 2345 6790", "", "98765 43212"]
    assert choose_phone(cells, GOOGLE_MAPPING, GOOGLE, "IN").e164 == "+919876543212"


def test_only_landlines_give_the_landline_error_naming_every_number_tried() -> None:
    cells = ["Home", "080 2345 6790 ::: 080 2345 6791", "Work", "12345"]
    choice = choose_phone(cells, GOOGLE_MAPPING, GOOGLE, "IN")
    assert choice.e164 is None and choice.error is not None
    assert choice.error.startswith(NOT_MOBILE + ". Tried: Phone 1 - Value *******6790 "
                                   "(landline); Phone 1 - Value *******6791 (landline); "
                                   "Phone 2 - Value 12345 (invalid)")


def test_one_column_one_number_keeps_the_plain_error() -> None:
    mapping = ColumnMapping(phones=(P(0),))
    assert choose_phone(["080 2345 6790"], mapping, ["Phone"], "IN").error == NOT_MOBILE
    assert choose_phone([""], mapping, ["Phone"], "IN").error == INVALID_PHONE


def test_the_clients_order_is_kept_when_it_chose_the_columns() -> None:
    mapping = ColumnMapping(phones=(P(0, RANK_HOME), P(1, RANK_MOBILE)), by_label=False)
    choice = choose_phone(["+91 98765 43299", "98765 43212"], mapping, ["Home", "Mobile"], "IN")
    assert choice.e164 == "+919876543299"


@pytest.mark.parametrize(
    ("text", "negated", "flag"),
    [("Yes", False, True), ("y", False, True), ("TRUE", False, True), ("1", False, True),
     ("haan", False, True), ("Haan ji", False, True), ("No", False, False),
     ("n", False, False), ("false", False, False), ("0", False, False),
     ("nahi", False, False), ("Nahin", False, False), ("", False, None),
     ("-", False, None), ("N/A", False, None), ("maybe", False, None),
     ("2024-03-02", True, True), ("spam caller", True, True), ("maybe", True, True)],
)  # fmt: skip
def test_read_flag(text: str, negated: bool, flag: bool | None) -> None:
    assert read_flag(text, negated) is flag


def test_verdict_any_no_wins_a_negated_no_is_not_a_yes() -> None:
    sources = (ConsentSource(0), ConsentSource(1, negated=True, reason="blocked"))
    assert verdict(["yes", "no"], sources).consent == "yes"
    assert verdict(["", "no"], sources).consent == "unknown"
    assert verdict(["yes", "yes"], sources) == verdict(["", "Yes"], sources)
    said = verdict(["yes", "yes"], sources)
    assert (said.consent, said.reason, said.column) == ("no", "blocked", 1)
    said = verdict(["nahi", ""], sources)
    assert (said.consent, said.reason, said.column) == ("no", "refused", 0)


def test_default_consent_require_opts_out_the_unknown() -> None:
    mapping = ColumnMapping(name=0, phones=(P(1),), consent=(ConsentSource(2),))
    headers = ["Name", "Phone", "OK"]
    blank = validate_row(["A", "9876543210", ""], 2, headers, mapping, "IN", "require")
    assert (blank.status, blank.consent, blank.opt_out_reason) == (
        "opted_out", "unknown", "consent_required")
    yes = validate_row(["A", "9876543210", "yes"], 2, headers, mapping, "IN", "require")
    assert (yes.status, yes.consent) == ("pending", "yes")
    assumed = validate_row(["A", "9876543210", ""], 2, headers, mapping, "IN")
    assert assumed.status == "pending"


def test_a_duplicate_saying_no_opts_out_the_row_kept() -> None:
    mapping = ColumnMapping(name=0, phones=(P(1),), consent=(ConsentSource(2),))
    headers = ["Name", "Phone", "OK"]
    rows = [validate_row(["A", "9876543210", "yes"], 2, headers, mapping, "IN"),
            validate_row(["A again", "98765 43210", "no"], 3, headers, mapping, "IN")]
    kept, dup = mark_in_file_duplicates(rows)
    assert (kept.status, kept.consent, kept.opt_out_reason) == ("opted_out", "no", "refused")
    assert dup.errors == [DUPLICATE_PHONE]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("Rahul  Verma", "Rahul Verma"), ("RAHUL VERMA", "Rahul Verma"),
     ("rahul verma", "Rahul Verma"), ("dr. meera iyer", "Dr. Meera Iyer"),
     ("A.R. RAHMAN", "A.R. Rahman"), ("o'brien-khan", "O'Brien-Khan"),
     ("McDonald", "McDonald"), ("Priya DSouza", "Priya DSouza"),
     ("प्रिया  शर्मा", "प्रिया शर्मा"), (" \tSMT.  kavita\u00a0RAO ", "SMT. kavita RAO")],
)  # fmt: skip
def test_clean_name(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


def test_an_organisation_stands_in_for_a_missing_name() -> None:
    mapping = ColumnMapping(first_name=0, last_name=1, organisation=2, phones=(P(3),))
    headers = ["First", "Last", "Company", "Phone"]
    row = validate_row(["", "", "Glow  Studio", "9876543210"], 2, headers, mapping, "IN")
    assert (row.name, row.name_from_organisation, row.errors) == ("Glow Studio", True, [])
    person = validate_row(["Asha", "", "Glow Studio", "9876543210"], 2, headers, mapping, "IN")
    assert (person.name, person.name_from_organisation) == ("Asha", False)


def test_greeting_name_skips_honorifics() -> None:
    assert greeting_name("Dr. Priya Nair") == "Priya"
    assert greeting_name("Shri Ram Kumar") == "Ram"
    assert greeting_name("") == "there"


def test_a_mapping_stored_before_phone_lists_still_reads() -> None:
    """A batch confirmed by the previous release (mapping with one "phone" index) imports
    after the upgrade."""
    from onboardd.db.imports import read_mapping

    stored = read_mapping({"headers": ["Name", "Phone"], "name": 0, "first_name": None,
                           "last_name": None, "phone": 1, "email": None})
    assert (stored.name, stored.phones, stored.headers) == (0, (P(1),), ["Name", "Phone"])
