"""Tests for message templates and SMS analysis."""

from __future__ import annotations

import pytest

from onboardd.domain.templates import (
    DEFAULT_TEMPLATE,
    GSM_BASIC,
    GSM_EXTENSION,
    VARIABLES,
    SmsInfo,
    TemplateContext,
    TemplateError,
    check_template,
    offer_amount_text,
    preview_warnings,
    render,
    sms_info,
    variables_for_contentsid,
)

CTX = TemplateContext(
    customer_name="Priya Sharma",
    salon_name="Glamour Studio",
    offer_amount="₹100",
    offer_code="WELCOME-A7K9M2",
    download_link="https://app.salonhub.com/s/abc123",
    expiry_days=30,
)

RENDERED_DEFAULT = (
    "Hi Priya! 👋\n"
    "\n"
    "Glamour Studio is now on SalonHub app. Book appointments, earn rewards, "
    "and get exclusive offers!\n"
    "\n"
    "🎁 Special for you: Get ₹100 OFF your next visit!\n"
    "Your code: WELCOME-A7K9M2\n"
    "\n"
    "Download now: https://app.salonhub.com/s/abc123\n"
    "\n"
    "Valid for 30 days."
)


def ctx(**changes: object) -> TemplateContext:
    """Return CTX with some fields replaced."""
    fields = {f: getattr(CTX, f) for f in CTX.__struct_fields__}
    fields.update(changes)
    return TemplateContext(**fields)


def test_default_template_is_the_spec_text() -> None:
    assert DEFAULT_TEMPLATE == (
        "Hi {{customer_name}}! 👋\n\n"
        "{{salon_name}} is now on SalonHub app. Book appointments, earn rewards, and get "
        "exclusive offers!\n\n"
        "🎁 Special for you: Get {{offer_amount}} OFF your next visit!\n"
        "Your code: {{offer_code}}\n\n"
        "Download now: {{download_link}}\n\n"
        "Valid for {{expiry_days}} days."
    )


def test_variables() -> None:
    assert VARIABLES == (
        "customer_name",
        "salon_name",
        "offer_amount",
        "offer_code",
        "download_link",
        "expiry_days",
    )


def test_render_default_template_exactly() -> None:
    assert render(DEFAULT_TEMPLATE, CTX) == RENDERED_DEFAULT


def test_check_default_template_uses_every_variable() -> None:
    assert check_template(DEFAULT_TEMPLATE) == list(VARIABLES)


def test_check_template_lists_each_variable_once_in_first_use_order() -> None:
    text = "{{ salon_name }} {{customer_name}} {{salon_name}}"
    assert check_template(text) == ["salon_name", "customer_name"]


def test_check_template_without_variables() -> None:
    assert check_template("Plain text, no variables.") == []


@pytest.mark.parametrize(
    "text",
    ["{{customer_name}}", "{{ customer_name }}", "{{  customer_name\t}}", "{{\ncustomer_name\n}}"],
)
def test_whitespace_inside_braces_is_allowed(text: str) -> None:
    assert check_template(text) == ["customer_name"]
    assert render(text, CTX) == "Priya"


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_empty_template_is_an_error(text: str) -> None:
    with pytest.raises(TemplateError, match="empty"):
        check_template(text)


def test_unknown_variables_are_named_with_the_allowed_ones() -> None:
    with pytest.raises(TemplateError) as caught:
        check_template("Hi {{first_name}}, {{salon}} {{first_name}} {{salon_name}}")
    error = caught.value
    assert error.unknown == ["first_name", "salon"]
    assert error.malformed == []
    message = str(error)
    assert "Unknown template variable(s): {{first_name}}, {{salon}}." in message
    assert "Allowed variables: {{customer_name}}, {{salon_name}}, {{offer_amount}}, " in message
    assert isinstance(error, ValueError)


def test_variable_names_are_case_sensitive() -> None:
    with pytest.raises(TemplateError) as caught:
        check_template("{{Customer_Name}}")
    assert caught.value.unknown == ["Customer_Name"]


@pytest.mark.parametrize(
    ("text", "malformed"),
    [
        ("Hi {{ customer_name }!", ["{{ customer_name }"]),
        ("Hi {customer_name}}!", ["{customer_name}}"]),
        ("Hi {customer_name}!", ["{customer_name}"]),
        ("Hi {{customer_name!", ["{{customer_name!"]),
        ("Hi customer_name}}!", ["customer_name}}"]),
        ("Hi {{}}", ["{{}}"]),
        ("Hi {{ customer name }}", ["{{ customer name }}"]),
        ("Hi {{customer-name}}", ["{{customer-name}}"]),
        ("{{salon_name}}} x", ["}"]),
        ("{{{salon_name}}", ["{"]),
    ],
)
def test_malformed_braces_are_reported(text: str, malformed: list[str]) -> None:
    with pytest.raises(TemplateError) as caught:
        check_template(text)
    assert caught.value.malformed == malformed
    assert caught.value.unknown == []
    assert "Malformed placeholder(s) near" in str(caught.value)
    assert "{{variable_name}}" in str(caught.value)


def test_malformed_and_unknown_together() -> None:
    with pytest.raises(TemplateError) as caught:
        check_template("{{foo}} and {salon_name}")
    assert caught.value.unknown == ["foo"]
    assert caught.value.malformed == ["{salon_name}"]


def test_render_rejects_a_bad_template() -> None:
    with pytest.raises(TemplateError):
        render("Hi {{name}}", CTX)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Priya Sharma", "Priya"),
        ("priya sharma", "priya"),
        ("PRIYA SHARMA", "PRIYA"),
        ("  Priya\tSharma ", "Priya"),
        ("Priya", "Priya"),
        # Honorifics are kept in the stored name, and skipped in a greeting.
        ("Dr. Priya", "Priya"),
        ("Smt. Kavita Rao", "Kavita"),
        ("DR PRIYA", "PRIYA"),
        ("Dr.", "Dr."),
        ("", "there"),
        ("   ", "there"),
        ("प्रिया शर्मा", "प्रिया"),
    ],
)
def test_customer_name_renders_the_first_name(name: str, expected: str) -> None:
    assert render("Hi {{customer_name}}!", ctx(customer_name=name)) == f"Hi {expected}!"


def test_an_organisation_is_greeted_by_its_whole_name() -> None:
    # The importer used the contact's organisation because no personal name existed.
    assert render("Hi {{customer_name}}!", ctx(customer_name="Glow Studio", whole_name=True)
                  ) == "Hi Glow Studio!"


@pytest.mark.parametrize(
    ("text", "days", "expected"),
    [
        ("Valid for {{expiry_days}}.", 30, "Valid for 30 days."),
        ("Valid for {{expiry_days}}.", 1, "Valid for 1 day."),
        # The spec's own default repeats the unit: render the number only.
        ("Valid for {{expiry_days}} days.", 30, "Valid for 30 days."),
        ("Valid for {{expiry_days}} days.", 1, "Valid for 1 day."),
        ("Valid for {{expiry_days}} day.", 30, "Valid for 30 days."),
        ("Valid for {{ expiry_days }}  days!", 7, "Valid for 7  days!"),
        ("Valid for {{expiry_days}} Days", 30, "Valid for 30 Days"),
        ("VALID FOR {{expiry_days}} DAYS", 1, "VALID FOR 1 DAY"),
        ("{{expiry_days}} days left, {{expiry_days}}", 2, "2 days left, 2 days"),
        # Not a unit word: the full text is rendered.
        ("{{expiry_days}} daytime", 30, "30 days daytime"),
        ("{{expiry_days}}\ndays", 30, "30 days\ndays"),
        ("{{expiry_days}}days", 30, "30 daysdays"),
    ],
)
def test_expiry_days(text: str, days: int, expected: str) -> None:
    assert render(text, ctx(expiry_days=days)) == expected


def test_unit_after_another_variable_is_kept() -> None:
    assert render("{{salon_name}} days", CTX) == "Glamour Studio days"


def test_values_are_not_expanded_again() -> None:
    rendered = render(
        "Hi {{customer_name}} from {{salon_name}}",
        ctx(customer_name="{{salon_name}}", salon_name="{{offer_code}}"),
    )
    assert rendered == "Hi {{salon_name}} from {{offer_code}}"


def test_variables_for_contentsid() -> None:
    assert variables_for_contentsid(CTX) == {
        "1": "Priya",
        "2": "Glamour Studio",
        "3": "₹100",
        "4": "WELCOME-A7K9M2",
        "5": "https://app.salonhub.com/s/abc123",
        "6": "30 days",
    }
    assert variables_for_contentsid(ctx(customer_name="", expiry_days=1))["1"] == "there"
    assert variables_for_contentsid(ctx(expiry_days=1))["6"] == "1 day"


@pytest.mark.parametrize(
    ("discount_type", "value", "expected"),
    [
        ("fixed", 10000, "₹100"),
        ("fixed", 15050, "₹150.50"),
        ("fixed", 10000000, "₹1,00,000"),
        ("percentage", 15, "15%"),
        ("percentage", 100, "100%"),
    ],
)
def test_offer_amount_text(discount_type: str, value: int, expected: str) -> None:
    assert offer_amount_text(discount_type, value) == expected


def test_offer_amount_text_unknown_type() -> None:
    with pytest.raises(ValueError, match="discount type"):
        offer_amount_text("bogo", 1)


# --- SMS encoding --------------------------------------------------------------


def test_gsm_tables_have_the_standard_sizes() -> None:
    assert len(GSM_BASIC) == 127  # 128 code points minus the escape
    assert len(GSM_EXTENSION) == 10
    assert not GSM_BASIC & GSM_EXTENSION


def test_pure_gsm() -> None:
    assert sms_info("Hello @ £5 ¿Qué?") == SmsInfo("GSM-7", 16, 1, [])


def test_empty_text() -> None:
    assert sms_info("") == SmsInfo("GSM-7", 0, 1, [])


@pytest.mark.parametrize("char", sorted("€[]{}^~|\\\f"))
def test_extension_characters_count_two(char: str) -> None:
    assert sms_info(f"a{char}b") == SmsInfo("GSM-7", 4, 1, [])


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "segments"),
    [
        ("a" * 153, "GSM-7", 153, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 459, "GSM-7", 459, 3),
        ("a" * 460, "GSM-7", 460, 4),
        ("€" * 80, "GSM-7", 160, 1),
        ("a" + "€" * 80, "GSM-7", 161, 2),
        ("é" * 160, "GSM-7", 160, 1),  # é, è, à... are in the GSM table
        ("ā" * 70, "UCS-2", 70, 1),
        ("ā" * 71, "UCS-2", 71, 2),
        ("ā" * 134, "UCS-2", 134, 2),
        ("ā" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "₹", "UCS-2", 70, 1),
        ("a" * 70 + "₹", "UCS-2", 71, 2),
        ("👋" * 35, "UCS-2", 70, 1),
        ("a" + "👋" * 35, "UCS-2", 71, 2),
        ("ā" + "€" * 69, "UCS-2", 70, 1),  # in UCS-2 € is one unit, not two
    ],
)
def test_boundaries(text: str, encoding: str, characters: int, segments: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.characters, info.segments) == (encoding, characters, segments)


def test_extension_char_is_not_split_across_segments() -> None:
    # 152 septets then € (escape + char) cannot fit in the first 153-septet
    # segment, so the € starts segment 2 and segment 1 carries only 152.
    assert sms_info("a" * 152 + "€" + "a" * 151) == SmsInfo("GSM-7", 305, 2, [])
    # 306 septets would be ceil(306 / 153) = 2 segments, but packed it is 3.
    assert sms_info("a" * 152 + "€" + "a" * 152) == SmsInfo("GSM-7", 306, 3, [])


def test_surrogate_pair_is_not_split_across_segments() -> None:
    assert sms_info("a" * 66 + "👋" + "a" * 65) == SmsInfo("UCS-2", 133, 2, ["👋"])
    # 134 units would be ceil(134 / 67) = 2 segments, but packed it is 3.
    assert sms_info("a" * 66 + "👋" + "a" * 66) == SmsInfo("UCS-2", 134, 3, ["👋"])


def test_non_gsm_chars_are_deduplicated_in_order() -> None:
    info = sms_info("Hi 👋 Priya 🎁 ₹100 👋 “quoted” ’")
    assert info.encoding == "UCS-2"
    assert info.non_gsm_chars == ["👋", "🎁", "₹", "“", "”", "’"]


def test_ucs2_counts_extension_characters_once() -> None:
    assert sms_info("ā€[").characters == 3


def test_rendered_default_template() -> None:
    info = sms_info(RENDERED_DEFAULT)
    assert info.encoding == "UCS-2"
    assert info.non_gsm_chars == ["👋", "🎁", "₹"]
    # 255 code points, of which the two emoji take two UTF-16 units each.
    assert len(RENDERED_DEFAULT) == 255
    assert info.characters == 257
    assert info.segments == 4  # ceil(257 / 67)


def test_rendered_default_template_with_percentage_offer() -> None:
    info = sms_info(render(DEFAULT_TEMPLATE, ctx(offer_amount="15%")))
    assert info.non_gsm_chars == ["👋", "🎁"]


# --- preview warnings ------------------------------------------------------------

UCS2_WARNING = (
    "UCS-2 encoding because of 👋, 🎁, ₹: each SMS segment holds 67 characters instead of 153"
)
SEGMENTS_WARNING = "4 SMS segments (more than the recommended 3): each segment is billed"
WHATSAPP_WARNING = (
    "WhatsApp business-initiated messages need an approved template: set whatsappContentSid"
)


@pytest.mark.parametrize(
    ("channel", "has_sid", "expected"),
    [
        ("sms", False, [UCS2_WARNING, SEGMENTS_WARNING]),
        ("sms", True, [UCS2_WARNING, SEGMENTS_WARNING]),
        ("whatsapp", False, [WHATSAPP_WARNING]),
        ("whatsapp", True, []),
        ("both", False, [UCS2_WARNING, SEGMENTS_WARNING, WHATSAPP_WARNING]),
        ("both", True, [UCS2_WARNING, SEGMENTS_WARNING]),
    ],
)
def test_preview_warnings_for_default(channel: str, has_sid: bool, expected: list[str]) -> None:
    assert preview_warnings(RENDERED_DEFAULT, channel, has_sid) == expected


def test_preview_warnings_segment_limit_is_configurable() -> None:
    assert preview_warnings(RENDERED_DEFAULT, "sms", False, max_segments=4) == [UCS2_WARNING]
    assert preview_warnings("a" * 161, "sms", False, max_segments=1) == [
        "2 SMS segments (more than the recommended 1): each segment is billed"
    ]


def test_preview_warnings_plain_short_sms() -> None:
    assert preview_warnings("Hi Priya, book at Glamour Studio", "sms", False) == []


def test_preview_warnings_show_invisible_characters_by_code_point() -> None:
    assert preview_warnings("a\u00a0b", "sms", False) == [
        "UCS-2 encoding because of U+00A0 (NO-BREAK SPACE): each SMS segment holds "
        "67 characters instead of 153"
    ]


def test_preview_warnings_unknown_channel() -> None:
    with pytest.raises(ValueError, match="channel"):
        preview_warnings("x", "email", False)
