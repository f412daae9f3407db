"""Which imported customers a campaign targets, as the API states it and as SQL wants it."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

# Statuses a campaign may target: registered customers are done, opted-out ones said STOP.
TARGETABLE: Final = ("pending", "invited", "expired")
DEFAULT_STATUSES: Final = ("pending",)
MAX_BATCH_IDS: Final = 100
MAX_DAYS_SINCE_INVITE: Final = 365
# Funnel stages in order (analytics); a campaign may target customers stuck at the first three.
FUNNEL_STAGES: Final = ("imported", "invited", "delivered", "registered", "firstBooking")
TARGETABLE_STAGES: Final = FUNNEL_STAGES[:3]


class Audience(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """The audience filter: customer status, import batches, imported after a moment, and
    (from analytics) the customers a campaign targeted, those at one funnel stage and not yet
    at the next, and those not invited in the last N days."""

    status: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_STATUSES))
    import_batch_ids: list[str] | None = None
    imported_after: datetime | None = None
    campaign_id: str | None = None
    funnel_stage: str | None = None
    min_days_since_invite: int | None = None


class AudienceParams(msgspec.Struct, frozen=True):
    """Positional parameters $2..$7 of the audience_* queries (after the salon id), in the
    order of the SQL function onboardd_audience."""

    statuses: list[str]
    batch_ids: list[str] | None
    imported_after: datetime | None
    campaign_id: str | None
    stage: int | None
    min_days_since_invite: int | None

    def args(self) -> tuple[object, ...]:
        """The parameters as a tuple, in SQL order."""
        return (self.statuses, self.batch_ids, self.imported_after, self.campaign_id,
                self.stage, self.min_days_since_invite)


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
    stage = audience.funnel_stage
    if stage is not None and stage not in TARGETABLE_STAGES:
        hint = ("registered customers are not invited again" if stage in FUNNEL_STAGES
                else "unknown stage")
        raise AudienceError(
            "audience.funnelStage",
            f"cannot target stage {stage!r} ({hint}); allowed: {', '.join(TARGETABLE_STAGES)}")
    days = audience.min_days_since_invite
    if days is not None and not 0 <= days <= MAX_DAYS_SINCE_INVITE:
        raise AudienceError("audience.minDaysSinceInvite",
                            f"give a number of days from 0 to {MAX_DAYS_SINCE_INVITE}, got {days}")
    if audience.campaign_id is not None and not audience.campaign_id.strip():
        raise AudienceError("audience.campaignId", "give a campaign id, or leave it out")
    return Audience(list(dict.fromkeys(audience.status)), batch_ids, after,
                    audience.campaign_id, stage, days)


def stage_index(stage: str) -> int:
    """The position of a funnel stage (0 imported ... 4 firstBooking), as SQL numbers it."""
    return FUNNEL_STAGES.index(stage)


def audience_params(audience: Audience) -> AudienceParams:
    """The SQL parameters of a checked audience."""
    stage = audience.funnel_stage
    return AudienceParams(list(audience.status), audience.import_batch_ids,
                          audience.imported_after, audience.campaign_id,
                          None if stage is None else stage_index(stage),
                          audience.min_days_since_invite)


def audience_from_json(raw: object) -> Audience:
    """Decode the stored jsonb audience (written by this module) back into a struct."""
    if not raw:
        return Audience()
    return msgspec.convert(raw, Audience)
