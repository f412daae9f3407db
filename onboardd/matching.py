"""Which E.164 numbers a phone typed into the app can mean, for matching imported customers.

The app may send a number in national format ("98765 43210"), so it is read as an Indian
number (the app's home region) and, for salons in other countries, as a number of that
country. A reading under a salon's own country only matches that country's salons: a national
number means the same thing to the customer as to the salon that imported it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from onboardd.phones import PhoneError, normalize_phone

HOME_REGION: Final = "IN"


class Candidate(NamedTuple):
    """One reading of a phone: its E.164 form, and the salon country it is limited to."""

    e164: str
    region: str | None  # None: matches salons of any country


def phone_candidates(raw: str, salon_regions: Iterable[str]) -> list[Candidate]:
    """Every reading of raw: home region first (any salon), then each other salon country."""
    found: list[Candidate] = []
    seen: set[str] = set()
    try:
        home = normalize_phone(raw, HOME_REGION)
    except PhoneError:
        pass
    else:
        found.append(Candidate(home, None))
        seen.add(home)
    for region in sorted(set(salon_regions) - {HOME_REGION}):
        try:
            e164 = normalize_phone(raw, region)
        except PhoneError:
            continue
        # The same number read under the home region already matches every salon.
        if e164 not in seen:
            found.append(Candidate(e164, region))
    return found


def for_region(candidates: Iterable[Candidate], country: str) -> list[str]:
    """The numbers that may match a salon in country."""
    return [c.e164 for c in candidates if c.region is None or c.region == country]
