"""Which imported customers a campaign targets, as the API states it and as SQL wants it."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

# Statuses a campaign may target: registered customers are done, opted-out ones said STOP.
TARGETABLE: Final = ("pending", "invited", "expired")
DEFAULT_STATUSES: Final = ("pending",)
MAX_BATCH_IDS: Final = 100


class Audience(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """The audience filter: customer status, import batches, imported after a moment."""

    status: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_STATUSES))
    import_batch_ids: list[str] | None = None
    imported_after: datetime | None = None


class AudienceParams(msgspec.Struct, frozen=True):
    """Positional parameters $2..$4 of the audience_* queries (after the salon id)."""

    statuses: list[str]
    batch_ids: list[str] | None
    imported_after: datetime | None


class AudienceError(ValueError):
    """An audience filter that cannot be used; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_audience(audience: Audience) -> Audience:
    """Return the audience with duplicates removed; raise AudienceError naming the field."""
    if not audience.status:
        raise AudienceError("audience.status", "give at least one status, e.g. [\"pending\"]")
    bad = [s for s in audience.status if s not in TARGETABLE]
    if bad:
        raise AudienceError(
            "audience.status",
            f"cannot target status {', '.join(repr(b) for b in bad)}; "
            f"allowed: {', '.join(TARGETABLE)}",
        )
    batch_ids = audience.import_batch_ids
    if batch_ids is not None:
        if not batch_ids:
            raise AudienceError(
                "audience.importBatchIds", "give at least one batch id, or leave it out for all"
            )
        if len(batch_ids) > MAX_BATCH_IDS:
            raise AudienceError(
                "audience.importBatchIds",
                f"at most {MAX_BATCH_IDS} batch ids, got {len(batch_ids)}",
            )
        batch_ids = list(dict.fromkeys(batch_ids))
    after = audience.imported_after
    if after is not None and after.tzinfo is None:
        raise AudienceError(
            "audience.importedAfter", "give a time zone, e.g. 2024-05-01T00:00:00Z"
        )
    return Audience(list(dict.fromkeys(audience.status)), batch_ids, after)


def audience_params(audience: Audience) -> AudienceParams:
    """The SQL parameters of a checked audience."""
    return AudienceParams(list(audience.status), audience.import_batch_ids,
                          audience.imported_after)


def audience_from_json(raw: object) -> Audience:
    """Decode the stored jsonb audience (written by this module) back into a struct."""
    if not raw:
        return Audience()
    return msgspec.convert(raw, Audience)
