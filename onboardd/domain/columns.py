"""Which columns of an uploaded file feed each customer field (pure data, kept with a batch)."""

from __future__ import annotations

from typing import Final

import msgspec

# Phone kinds in the order a number is tried: a mobile first, then a number of unknown kind,
# then home, then work or business lines.
RANK_MOBILE: Final = 0
RANK_GENERIC: Final = 1
RANK_HOME: Final = 2
RANK_WORK: Final = 3


class PhoneSource(msgspec.Struct, frozen=True):
    """A column that may hold the customer's number: its kind by header (rank), and the
    column labelling it per row (Google's "Phone 1 - Label"), whose cell, when filled, decides
    the kind instead."""

    column: int
    rank: int = RANK_GENERIC
    label: int | None = None


class ConsentSource(msgspec.Struct, frozen=True):
    """A column saying whether the customer agreed to marketing; negated columns ("Blocked",
    "Unsubscribed") say yes to mean no. reason is what a no from it records ("refused",
    "blocked" or "unsubscribed")."""

    column: int
    negated: bool = False
    reason: str = "refused"


class ColumnMapping(msgspec.Struct, frozen=True):
    """Column indices of each customer field; None (or empty) when the file has no such
    column. phones are in priority order; by_label lets each row's label cells reorder them
    (off when the client chose the order)."""

    name: int | None = None
    first_name: int | None = None
    middle_name: int | None = None
    last_name: int | None = None
    organisation: int | None = None
    phones: tuple[PhoneSource, ...] = ()
    email: int | None = None
    consent: tuple[ConsentSource, ...] = ()
    by_label: bool = True

    @property
    def phone(self) -> int | None:
        """The first phone column, or None."""
        return self.phones[0].column if self.phones else None

    def columns(self) -> set[int]:
        """Every column this mapping reads (label columns included)."""
        used = {i for i in (self.name, self.first_name, self.middle_name, self.last_name,
                            self.organisation, self.email) if i is not None}
        for source in self.phones:
            used.add(source.column)
            if source.label is not None:
                used.add(source.label)
        used.update(source.column for source in self.consent)
        return used
