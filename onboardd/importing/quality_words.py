"""The import quality summary in words: the headline, a sentence for every count that is not
zero, and what consent means for the file. Pure text, shared by the admin UI's import wizard and
`onboardd import` in a shell, so both say the same."""

from __future__ import annotations

from onboardd.importing.quality import Quality

__all__ = ["consent_sentence", "counted", "quality_lead", "quality_lines"]


def _number(value: int) -> str:
    return f"{value:,}"


def counted(value: int, one: str, many: str) -> str:
    """The count and its noun: 1 row, 1,234 rows."""
    return f"{_number(value)} {one if value == 1 else many}"


def quality_lead(quality: Quality) -> str:
    """The headline: how many rows will be imported."""
    if quality.total_rows == 0:
        return "The file has no customer rows."
    return (f"{_number(quality.will_import)} of {counted(quality.total_rows, 'row', 'rows')} "
            f"will be imported.")


def quality_lines(quality: Quality) -> list[str]:
    """Every other count that is not zero, as a sentence."""
    lines = [
        (quality.duplicates_in_file, "row repeats a number found earlier in the file",
         "rows repeat a number found earlier in the file", " (the first one is kept)"),
        (quality.already_customers, "row is already one of your customers",
         "rows are already your customers", " (skipped)"),
        (quality.landlines, "row has a landline number", "rows have a landline number",
         ", which cannot receive SMS or WhatsApp"),
        (quality.invalid_numbers, "row has an invalid phone number",
         "rows have an invalid phone number", ""),
        (quality.missing_numbers, "row has no phone number", "rows have no phone number", ""),
        (quality.missing_names, "row has no name", "rows have no name",
         " (a name is required)"),
        (quality.invalid_emails, "row has an invalid email address",
         "rows have an invalid email address", ""),
        (quality.other_invalid, "row is too long to be a customer",
         "rows are too long to be customers", " (a cell or the whole row)"),
        (quality.named_after_organisation, "customer will be named after their organisation",
         "customers will be named after their organisation", " (no personal name)"),
    ]
    return [f"{_number(n)} {one if n == 1 else many}{tail}." for n, one, many, tail in lines
            if n]


def consent_sentence(quality: Quality, consent_columns: list[str]) -> str:
    """What the consent columns said and what a blank one means for this file."""
    rule = ("A blank consent counts as yes: the salon vouches for its list "
            "([import] default_consent = \u201cassume\u201d)."
            if quality.default_consent != "require" else
            "A blank consent counts as no: those customers are imported opted out and never "
            "invited ([import] default_consent = \u201crequire\u201d).")
    if not consent_columns:
        return f"Consent: no consent column, so every customer's consent is blank. {rule}"
    said = (f"{_number(quality.consent_yes)} said yes, {_number(quality.consent_no)} said no "
            f"(imported opted out, never invited), {_number(quality.consent_blank)} left it "
            f"blank.")
    return f"Consent ({', '.join(consent_columns)}): {said} {rule}"
