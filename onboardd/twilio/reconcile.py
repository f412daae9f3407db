"""Reconciliation: ask Twilio's Messages list for what its callbacks never told us.

``reconcile_messages(services, message_ids=..., campaign_id=...)`` looks up messages that are
not final: accepted ones (a SID, still queued/sent after the delivery wait) by their SID, and
cut-off sends (status 'sending', lease expired, no SID) by recipient and time. What it finds
goes through the status recorder's queue like any callback (StatusCallback for a known SID; an
accepted SendOutcome when a cut-off send did reach Twilio; a retry outcome when it certainly
did not), so counters stay equal to recounts. The dispatcher may call it for its own cut-off
sends. ``job`` is the scheduler's periodic pass; ``onboardd reconcile --campaign ID`` the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from twilio.rest import Client

from onboardd.db import delivery as db
from onboardd.domain.status_events import SendOutcome, StatusCallback, StatusWork
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio.account import address, new_client
from onboardd.twilio.client import (
    ListedMessage,
    TwilioListError,
    TwilioTransportError,
    close_client,
    list_messages,
)

log = get_logger("reconcile")

BATCH = 500  # messages per periodic pass
LOOKUPS_IN_FLIGHT = 8
LIST_LIMIT = 50  # messages listed per recipient
# Look this far before the attempt started: Twilio's DateSent filter has second precision and
# clocks differ.
CLOCK_SLACK = timedelta(minutes=2)


class ReconcileReport(msgspec.Struct):
    """What one reconciliation pass found."""

    examined: int = 0
    statuses_found: int = 0
    sends_found: int = 0
    sends_not_found: int = 0
    lookups_failed: int = 0


async def _lookup(client: Client, to: str, since: datetime) -> list[ListedMessage]:
    return await list_messages(client, to=to, from_=None, date_sent_after=since - CLOCK_SLACK,
                               limit=LIST_LIMIT)


async def _examine(services: Services, client: Client, message: db.Unfinished,
                   gate: asyncio.Semaphore, report: ReconcileReport
                   ) -> list[SendOutcome | StatusCallback]:
    """Events that bring one message up to date with Twilio's record."""
    e164 = services.cipher.decrypt(message.phone_enc, "phone")
    to = address(message.channel, e164)
    async with gate:
        try:
            listed = await _lookup(client, to, message.since)
        except (TwilioListError, TwilioTransportError) as exc:
            report.lookups_failed += 1
            log.warning("reconcile_lookup_failed", message_id=message.id, error=str(exc))
            return []
    now = datetime.now(UTC)
    if message.sid is not None:
        for item in listed:
            if item.sid == message.sid:
                report.statuses_found += 1
                return [StatusCallback(sid=item.sid, status=item.status, at=now,
                                       error_code=item.error_code)]
        return []
    if message.status != "sending":
        return []
    # A cut-off send: did Twilio create it? Only a message to this number since the attempt
    # started whose SID no other invitation carries.
    candidates = [item for item in listed
                  if (item.date_created or now) >= message.since - CLOCK_SLACK
                  and (message.sender is None or item.from_ == message.sender)]
    taken = await db.known_sids(services.pool, [c.sid for c in candidates]) if candidates else set()
    fresh = [c for c in candidates if c.sid not in taken]
    if fresh:
        found = min(fresh, key=lambda c: c.date_created or now)
        report.sends_found += 1
        return [
            SendOutcome(message_id=message.id, outcome="accepted", at=found.date_created or now,
                        channel=message.channel, sid=found.sid, sender=found.from_),
            StatusCallback(sid=found.sid, status=found.status, at=now,
                           error_code=found.error_code),
        ]
    report.sends_not_found += 1
    return [SendOutcome(message_id=message.id, outcome="retry", at=now, channel=message.channel,
                        next_attempt_at=now,
                        error_message="send was cut off and Twilio has no such message")]


async def feed(services: Services, items: Sequence[SendOutcome | StatusCallback]) -> bool:
    """Put events on the recorder's queue and wait until they are durable.

    The wait is bounded by ``[supervisor] shutdown_grace_s`` (a recorder that is down or
    restarting must not hold a job, or a stopping daemon, forever): False, logged once, when it
    ran out; the events stay queued and are recorded when the recorder gets to them. Raises the
    flush's error when the recorder could not record them.
    """
    if not items:
        return True
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await services.queues.status.put(StatusWork(items=list(items), done=done))
    wait_s = services.cfg.supervisor.shutdown_grace_s
    finished, _ = await asyncio.wait({done}, timeout=wait_s)
    if not finished:
        log.warning("status_events_not_yet_durable", events=len(items), waited_s=wait_s,
                    hint="still queued for the status recorder")
        return False
    done.result()
    return True


async def reconcile_messages(services: Services, *, message_ids: list[str] | None = None,
                             campaign_id: str | None = None, client: Client | None = None,
                             lease_grace_s: float = 0.0, limit: int = BATCH,
                             delivery_wait_s: float | None = None) -> ReconcileReport:
    """Reconcile the given messages, or the unfinished ones of a campaign (or of all)."""
    wait_s = services.cfg.campaigns.delivery_wait_s if delivery_wait_s is None else delivery_wait_s
    if message_ids is not None:
        messages = await db.messages_by_id(services.pool, message_ids)
    else:
        messages = await db.unfinished_messages(
            services.pool, campaign_id, wait_s, limit, lease_grace_s)
    report = ReconcileReport(examined=len(messages))
    if not messages:
        return report
    own_client = client is None
    if client is None:
        client = new_client(services)
    try:
        gate = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)
        found = await asyncio.gather(*(_examine(services, client, m, gate, report)
                                       for m in messages))
    finally:
        if own_client:
            await close_client(client)
    await feed(services, [event for events in found for event in events])
    log.info("reconciled", campaign_id=campaign_id, **msgspec.structs.asdict(report))
    return report
