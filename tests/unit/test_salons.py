"""A new salon's fields: normalised, or one error naming the field and the fix."""

from __future__ import annotations

import pytest

from onboardd.domain.salons import SalonFieldError, SalonFields, validate_salon


def test_valid_fields_are_normalised() -> None:
    assert validate_salon("  Glamour   Studio ", "in", "Asia/Kolkata",
                          " https://app.example.com/g ") == SalonFields(
        "Glamour Studio", "IN", "Asia/Kolkata", "https://app.example.com/g")
    assert validate_salon("Nail Bar", "AE", "Asia/Dubai", "").app_download_link is None


@pytest.mark.parametrize(("args", "field", "text"), [
    (("",), "name", "name: must not be empty"),
    (("   ",), "name", "name: must not be empty"),
    (("x" * 300,), "name", "name: is 300 characters; at most 120 are allowed"),
    (("Salon", "XX"), "country", "country: unknown country code 'XX': use a two-letter"),
    (("Salon", "India"), "country", "country: unknown country code 'India'"),
    (("Salon", "IN", "Mars/Olympus"), "timezone",
     "timezone: unknown timezone 'Mars/Olympus': use an IANA name such as Asia/Kolkata"),
    (("Salon", "IN", "../../etc/passwd"), "timezone", "timezone: unknown timezone"),
    (("Salon", "IN", "Asia/Kolkata", "app.example.com"), "app-link",
     "app-link: 'app.example.com' is not an http(s) URL"),
    (("Salon", "IN", "Asia/Kolkata", "javascript:alert(1)"), "app-link", "is not an http(s)"),
    (("Salon", "IN", "Asia/Kolkata", "https://a.example/" + "x" * 500), "app-link",
     "at most 500"),
])
def test_each_bad_field_is_named(args: tuple[str, ...], field: str, text: str) -> None:
    with pytest.raises(SalonFieldError) as raised:
        validate_salon(*args)
    assert raised.value.field == field
    assert text in str(raised.value)
    assert str(raised.value).startswith(f"{field}: ")
