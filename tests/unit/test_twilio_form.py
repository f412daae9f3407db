"""Pure webhook form rules, the simulator token and mode rules, and the parked form of an event."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from multidict import MultiDict

from onboardd.config import Config, ConfigError, load
from onboardd.domain.status_events import PARKED_MAX_CHARS, SendOutcome, StatusCallback, parked
from onboardd.twilio import account as twilio_account
from onboardd.web.twilio_form import (
    INT32_MAX,
    TWILIO_STATUSES,
    FormError,
    inbound_fields,
    parse_form,
    status_fields,
)

FORM = "application/x-www-form-urlencoded"
SID = "SM" + "0123456789abcdef" * 2


def test_parse_form_keeps_every_param_for_the_signature() -> None:
    form = parse_form(b"A=1&A=2&Body=Hi+there%21&Empty=", f"{FORM}; charset=UTF-8")
    assert form.getall("A") == ["1", "2"]
    assert form["Body"] == "Hi there!" and form["Empty"] == ""
    assert parse_form(b"", FORM) == MultiDict()


@pytest.mark.parametrize(("raw", "content_type", "field", "words"), [
    (b"a=\xff", FORM, None, "not valid UTF-8"),
    (b"a=%C3%28", FORM, None, "percent-encoded value is not valid UTF-8"),
    (b"a=1&b", FORM, None, "name=value pairs"),
    (b"&".join([b"a=1"] * 201), FORM, None, "at most 200"),
    (b"a=1", "multipart/form-data; boundary=x", "Content-Type", "must be " + FORM),
    (b"a=1", "", "Content-Type", "(none)"),
    (b"a=1", FORM + "; charset=iso-8859-1", "Content-Type", "charset must be UTF-8"),
])
def test_parse_form_refuses_what_twilio_never_sends(raw: bytes, content_type: str,
                                                    field: str | None, words: str) -> None:
    with pytest.raises(FormError) as info:
        parse_form(raw, content_type)
    assert info.value.field == field and words in info.value.message


@pytest.mark.parametrize("content_type", [
    FORM, f"{FORM}; charset=UTF-8", 'Application/X-WWW-Form-Urlencoded;charset="utf-8"',
    f" {FORM} ; CHARSET = utf8 ", f"{FORM}; charset*=utf-8''UTF-8", f"{FORM}; x=1; charset=utf-8",
])
def test_parse_form_reads_the_content_type_as_mime_does(content_type: str) -> None:
    assert parse_form(b"A=1", content_type) == MultiDict({"A": "1"})


@pytest.mark.parametrize(("content_type", "words"), [
    (f'{FORM}; charset="utf-8;x"', "'utf-8;x'"),  # a quoted ";" is part of the value
    (f"{FORM}; charset=utf-8; charset=latin-1", "'latin-1'"),  # the last one counts
    (f"{FORM}; charset", "charset must be UTF-8, got ''"),
    ("garbage; charset=utf-8", "got 'garbage'"),  # what was sent, not a parser default
])
def test_parse_form_content_type_refusals_quote_what_was_sent(content_type: str,
                                                              words: str) -> None:
    with pytest.raises(FormError) as info:
        parse_form(b"A=1", content_type)
    assert info.value.field == "Content-Type" and words in info.value.message


def test_status_fields_accept_twilio_shapes() -> None:
    fields = status_fields(MultiDict({"SmsSid": "MM" + "A" * 32, "SmsStatus": " Delivered ",
                                      "ErrorCode": str(INT32_MAX), "ErrorMessage": ""}))
    assert (fields.sid, fields.status, fields.error_code, fields.error_message) == (
        "MM" + "A" * 32, "delivered", INT32_MAX, None)
    for status in TWILIO_STATUSES:
        assert status_fields(MultiDict({"MessageSid": SID, "MessageStatus": status})).status == \
            status


@pytest.mark.parametrize(("changes", "field"), [
    ({"MessageSid": ""}, "MessageSid"),
    ({"MessageStatus": ""}, "MessageStatus"),
    ({"MessageSid": "SM" + "0" * 31}, "MessageSid"),
    ({"MessageSid": "SM" + "g" * 32}, "MessageSid"),
    ({"MessageSid": "AC" + "0" * 32}, "MessageSid"),
    ({"AccountSid": "ACsimulator00000000000000000000000"}, "AccountSid"),
    ({"MessageStatus": "bogus"}, "MessageStatus"),
    ({"ErrorCode": str(INT32_MAX + 1)}, "ErrorCode"),
    ({"ErrorCode": "١٢"}, "ErrorCode"),  # Arabic-Indic digits: isdigit(), not ASCII
    ({"ErrorCode": "30003.0"}, "ErrorCode"),
    ({"ErrorMessage": "x" * 1025}, "ErrorMessage"),
    ({"Extra": "a\x00b"}, "Extra"),
    ({"Ex\x00tra": "ab"}, "Extra"),
])
def test_status_fields_refusals_name_the_field(changes: dict[str, str], field: str) -> None:
    form = MultiDict({"MessageSid": SID, "MessageStatus": "sent", **changes})
    with pytest.raises(FormError) as info:
        status_fields(form)
    assert info.value.field == field
    assert "\x00" not in info.value.message


def test_inbound_fields() -> None:
    fields = inbound_fields(MultiDict({"From": "whatsapp:+919876543210", "To": "+14155238886",
                                       "Body": "STOP", "MessageSid": SID}))
    assert (fields.phone, fields.sender, fields.text, fields.sid) == (
        "+919876543210", "+14155238886", "STOP", SID)
    assert inbound_fields(MultiDict({"From": "+1", "To": "+2"})).sid is None
    with pytest.raises(FormError, match="Body: at most 4096"):
        inbound_fields(MultiDict({"From": "+1", "To": "+2", "Body": "x" * 4097}))


def _cfg(tmp_path: Path, **env: str) -> Config:
    return load(None, {"ONBOARDD_PATHS_STATE_DIR": str(tmp_path / "state"), **env})


def test_simulator_token_is_random_per_state_dir_and_kept(tmp_path: Path) -> None:
    one, two = _cfg(tmp_path / "a"), _cfg(tmp_path / "b")
    token = twilio_account.auth_token(one)
    assert token == twilio_account.auth_token(one) != twilio_account.auth_token(two)
    kept = tmp_path / "a" / "state" / twilio_account.SIMULATOR_TOKEN_FILE
    assert kept.read_text() == token and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert twilio_account.simulator_settings(one).auth_token == token
    explicit = _cfg(tmp_path / "c", ONBOARDD_SIMULATOR_AUTH_TOKEN="chosen-by-the-operator-0123")
    assert twilio_account.auth_token(explicit) == "chosen-by-the-operator-0123"
    assert not (tmp_path / "c" / "state").exists()
    real = _cfg(tmp_path / "d", TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN="real")
    assert twilio_account.credentials(real) == ("AC" + "1" * 32, "real")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / twilio_account.SIMULATOR_TOKEN_FILE).write_text("\n")
    with pytest.raises(ConfigError, match="delete the file"):
        twilio_account.simulator_token(tmp_path / "e")


def test_mode_rules(tmp_path: Path) -> None:
    external = {"ONBOARDD_DATABASE_URL": "postgresql://db/x"}
    twilio_account.check_mode(_cfg(tmp_path))  # embedded: the simulator is the default
    with pytest.raises(ConfigError, match=r"\[simulator\] enabled = true"):
        twilio_account.check_mode(_cfg(tmp_path, **external))
    twilio_account.check_mode(_cfg(tmp_path, ONBOARDD_SIMULATOR_ENABLED="true", **external))
    twilio_account.check_mode(_cfg(tmp_path, TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t",
                                   **external))


def test_parked_form_keeps_ids_masks_text_and_is_storable() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    event = parked(StatusCallback(sid="SM" + "1" * 60, status="failed", at=at, error_code=2**40,
                                  error_message="To +919876543210\x00 " + "x" * 500),
                   "DataError: bad \x00 value for +919876543210")
    assert event.kind == "status_callback" and event.message_id is None
    assert event.sid == "SM" + "1" * 60  # a SID is not a phone: kept as is
    assert event.payload["error_code"] == 2**40 and event.payload["at"] == "2025-01-01T00:00:00Z"
    text = event.payload["error_message"]
    assert "\x00" not in text and "9876543210" not in text and "******3210" in text
    assert len(text) == PARKED_MAX_CHARS + 3
    assert "\x00" not in event.error and "9876543210" not in event.error
    outcome = parked(SendOutcome("m1", "accepted", at, "sms", sid="SM1"), "e")
    assert (outcome.kind, outcome.message_id, outcome.sid) == ("send_outcome", "m1", "SM1")
