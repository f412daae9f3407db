"""Column mapping: synonyms, first+last merge, explicit overrides and descriptions."""

from __future__ import annotations

import pytest

from onboardd.domain.columns import RANK_GENERIC, RANK_HOME, RANK_MOBILE, RANK_WORK, ConsentSource
from onboardd.domain.columns import PhoneSource as P
from onboardd.importing.mapping import (
    ColumnMapping,
    MappingError,
    describe,
    guess_mapping,
    mapping_from_request,
    require_phone,
)


@pytest.mark.parametrize(
    "header",
    ["Name", "name", " NAME ", "Customer Name", "customer_name", "Full Name", "FULLNAME",
     "Client", "Client Name", "Customer", "Full-Name"],
)  # fmt: skip
def test_name_synonyms(header: str) -> None:
    assert guess_mapping([header, "Phone"]) == ColumnMapping(name=0, phones=(P(1),))


@pytest.mark.parametrize(
    "header",
    ["Phone", "Mobile", "Mobile No.", "mobile no", "Mobile Number", "MOBILE_NUMBER", "Contact",
     "Contact No", "Contact No.", "WhatsApp", "Whatsapp Number", "Phone Number", "Cell",
     "Cell Phone", "Telephone", "Phone 1 - Value", "phone#", "Contact Number"],
)  # fmt: skip
def test_phone_synonyms(header: str) -> None:
    mapping = guess_mapping(["Name", header])
    assert (mapping.name, mapping.phone, len(mapping.phones)) == (0, 1, 1)


@pytest.mark.parametrize(
    "header", ["Email", "E-mail", "e mail", "Mail", "Email Address", "E-mail 1 - Value", "EMAIL"]
)
def test_email_synonyms(header: str) -> None:
    mapping = guess_mapping(["Name", "Phone", header])
    assert mapping == ColumnMapping(name=0, phones=(P(1),), email=2)


@pytest.mark.parametrize(
    ("first", "last"),
    [("First Name", "Last Name"), ("Given Name", "Surname"), ("first", "last"),
     ("FIRST_NAME", "Family Name")],
)  # fmt: skip
def test_first_last_merge(first: str, last: str) -> None:
    headers = [first, last, "Mobile"]
    mapping = guess_mapping(headers)
    assert mapping == ColumnMapping(first_name=0, last_name=1, phones=(P(2, RANK_MOBILE),))
    assert describe(mapping, headers) == ({"name": [first, last], "phone": "Mobile"}, [])


def test_full_name_column_wins_over_first_last() -> None:
    headers = ["First Name", "Last Name", "Full Name", "Phone"]
    mapping = guess_mapping(headers)
    assert mapping == ColumnMapping(name=2, phones=(P(3),))
    assert describe(mapping, headers) == (
        {"name": "Full Name", "phone": "Phone"},
        ["First Name", "Last Name"],
    )


def test_only_first_name() -> None:
    assert guess_mapping(["First Name", "Phone"]) == ColumnMapping(first_name=0, phones=(P(1),))
    assert describe(ColumnMapping(first_name=0, phones=(P(1),)), ["First Name", "Phone"])[0] == {
        "name": ["First Name"],
        "phone": "Phone",
    }


def test_google_contacts_export() -> None:
    headers = ["Name", "Given Name", "Family Name", "E-mail 1 - Type", "E-mail 1 - Value",
               "Phone 1 - Type", "Phone 1 - Value", "Phone 2 - Type",
               "Phone 2 - Value"]  # fmt: skip
    # Both phone columns, each with the column that labels it per row.
    assert guess_mapping(headers) == ColumnMapping(
        name=0, phones=(P(6, label=5), P(8, label=7)), email=4)


def test_specific_phone_synonym_beats_vague_contact() -> None:
    # "Contact" often holds the person; an explicit Mobile column is the number.
    assert guess_mapping(["Contact", "Mobile"]).phone == 1
    assert guess_mapping(["Mobile", "Phone"]).phone == 0


def test_leftmost_column_wins_for_same_synonym() -> None:
    assert guess_mapping(["Phone", "phone (2)", "PHONE"]).phone == 0


def test_fallback_contains_words() -> None:
    headers = ["Customer", "Customer Mobile (WhatsApp)", "Primary E-mail ID"]
    assert guess_mapping(headers) == ColumnMapping(name=0, phones=(P(1, RANK_MOBILE),),
                                                   email=2)


def test_fallback_ignores_type_columns() -> None:
    assert guess_mapping(["Name", "Phone Type"]).phone is None


def test_nothing_matches() -> None:
    assert guess_mapping(["Column 1", "Column 2"]) == ColumnMapping()
    assert guess_mapping([]) == ColumnMapping()


def test_describe_lists_unmapped() -> None:
    headers = ["Name", "Birthday", "Mobile", "Notes"]
    assert describe(guess_mapping(headers), headers) == (
        {"name": "Name", "phone": "Mobile"},
        ["Birthday", "Notes"],
    )


def test_request_overrides_guess() -> None:
    headers = ["Name", "Phone", "Alt Mobile", "Mail"]
    mapping = mapping_from_request(headers, {"phone": "alt mobile"})
    assert mapping == ColumnMapping(name=0, phones=(P(2, RANK_MOBILE),), email=3,
                                    by_label=False)


def test_request_space_and_case_insensitive() -> None:
    headers = ["Customer Name", "Mobile No."]
    mapping = mapping_from_request(headers, {"name": " customer  name ", "phone": "MOBILENO."})
    assert mapping == ColumnMapping(name=0, phones=(P(1, RANK_MOBILE),), by_label=False)


def test_request_first_last_replaces_guessed_name() -> None:
    headers = ["Name", "First", "Last", "Phone"]
    mapping = mapping_from_request(headers, {"firstName": "First", "lastName": "Last"})
    assert mapping == ColumnMapping(first_name=1, last_name=2, phones=(P(3),))


def test_request_name_replaces_guessed_first_last() -> None:
    headers = ["First Name", "Last Name", "Display", "Phone"]
    mapping = mapping_from_request(headers, {"name": "Display"})
    assert mapping == ColumnMapping(name=2, phones=(P(3),))


def test_request_empty_value_unmaps() -> None:
    mapping = mapping_from_request(["Name", "Phone", "Email"], {"email": ""})
    assert mapping == ColumnMapping(name=0, phones=(P(1),))


def test_request_steals_guessed_column() -> None:
    # The client says the "Email" column is really the phone: email must not keep it.
    mapping = mapping_from_request(["Name", "Email"], {"phone": "Email"})
    assert mapping == ColumnMapping(name=0, phones=(P(1),), by_label=False)


def test_request_unknown_header() -> None:
    with pytest.raises(MappingError) as caught:
        mapping_from_request(["Name", "Mobile"], {"phone": "Telephone"})
    assert caught.value.field == "phone"
    assert caught.value.message == (
        "Column 'Telephone' chosen for phone is not in the file. Columns found: 'Name', 'Mobile'."
    )


def test_request_unknown_field() -> None:
    with pytest.raises(MappingError) as caught:
        mapping_from_request(["Name", "Mobile"], {"address": "Name"})
    assert caught.value.field == "address"
    assert ("name, firstName, middleName, lastName, organisation, phone, email, consent"
            in caught.value.message)


def test_request_same_column_twice() -> None:
    with pytest.raises(MappingError) as caught:
        mapping_from_request(["Name", "Mobile"], {"name": "Mobile", "phone": "mobile"})
    assert caught.value.field == "phone"
    assert "'Mobile'" in caught.value.message


def test_mapping_error_is_value_error() -> None:
    assert issubclass(MappingError, ValueError)


def test_require_phone() -> None:
    require_phone(ColumnMapping(name=0, phones=(P(1),)), ["Name", "Phone"])
    with pytest.raises(MappingError) as caught:
        require_phone(guess_mapping(["Name", "Email"]), ["Name", "Email"])
    assert caught.value.field == "phone"
    assert caught.value.message.endswith("Columns found: 'Name', 'Email'.")


def test_outlook_phones_are_ordered_mobile_generic_home_work() -> None:
    headers = ["First Name", "Last Name", "E-mail Address", "Home Phone", "Home Phone 2",
               "Business Phone", "Mobile Phone", "Car Phone", "Other Phone", "Primary Phone",
               "Pager", "Business Fax", "Company Main Phone", "TTY/TDD Phone",
               "Assistant's Phone", "Company"]  # fmt: skip
    mapping = guess_mapping(headers)
    assert [(headers[s.column], s.rank) for s in mapping.phones] == [
        ("Mobile Phone", RANK_MOBILE), ("Car Phone", RANK_GENERIC),
        ("Other Phone", RANK_GENERIC), ("Primary Phone", RANK_GENERIC),
        ("Home Phone", RANK_HOME), ("Home Phone 2", RANK_HOME),
        ("Business Phone", RANK_WORK), ("Company Main Phone", RANK_WORK)]
    assert (mapping.first_name, mapping.last_name, mapping.email, mapping.organisation) == (
        0, 1, 2, 15)


@pytest.mark.parametrize(
    ("header", "negated", "reason"),
    [("Accepts Marketing", False, "refused"), ("Accepts SMS Marketing", False, "refused"),
     ("Accepts WhatsApp", False, "refused"), ("Marketing Consent", False, "refused"),
     ("Opt In", False, "refused"), ("Subscribed", False, "refused"),
     ("Unsubscribed", True, "unsubscribed"), ("Do Not Contact", True, "unsubscribed"),
     ("DND", True, "unsubscribed"), ("Blocked", True, "blocked"),
     ("Opted Out", True, "unsubscribed"), ("Do Not Disturb", True, "unsubscribed")],
)  # fmt: skip
def test_consent_columns_and_their_sense(header: str, negated: bool, reason: str) -> None:
    mapping = guess_mapping(["Name", "Mobile", header])
    assert mapping.consent == (ConsentSource(2, negated=negated, reason=reason),)
    assert len(mapping.phones) == 1


@pytest.mark.parametrize(
    "header", ["Accepts Email Marketing", "Email Opt In", "Block Reason",
               "Receive Transactional SMS", "Newsletter Subscribed", "Referral Source"])
def test_columns_that_say_nothing_about_sms_or_whatsapp_consent(header: str) -> None:
    assert guess_mapping(["Name", "Mobile", header]).consent == ()


def test_request_phone_list_is_tried_in_the_clients_order() -> None:
    headers = ["Name", "Mobile", "Home", "Office", "Marketing OK?"]
    mapping = mapping_from_request(headers, {"phone": ["Office", "Mobile"],
                                             "consent": "Marketing OK?"})
    assert mapping.phones == (P(3, RANK_GENERIC), P(1, RANK_MOBILE))
    assert mapping.by_label is False
    assert mapping.consent == (ConsentSource(4),)
    assert describe(mapping, headers)[0]["phone"] == ["Office", "Mobile"]


def test_request_one_column_twice_in_the_phone_list() -> None:
    with pytest.raises(MappingError) as caught:
        mapping_from_request(["Name", "Mobile"], {"phone": ["Mobile", "mobile"]})
    assert caught.value.field == "phone"


def test_request_a_list_for_a_single_field() -> None:
    with pytest.raises(MappingError) as caught:
        mapping_from_request(["Name", "Email", "Mobile"], {"email": ["Email", "Mobile"]})
    assert caught.value.field == "email"
    assert "Only phone and consent take a list" in caught.value.message
