"""The one answer to "did Twilio get this message?", and reconciliation with its Messages list.

A send whose answer never came (a timeout, a lost connection, a crash or a kill -9 in the middle
of the request) may or may not have created a message at Twilio, and resending blindly could
message someone twice. Every path that meets such a send asks ``find_send``: one lookup of
Twilio's Messages list around one pure rule, ``pick``. They are the dispatcher right after a
cut-off request, the lease sweep (rows whose lease ran out: the scheduler's ``send_leases`` job)
and ``onboardd reconcile``.

``reconcile_messages`` is one pass: the lease sweep, the status lookups (accepted messages whose
callbacks never arrived, looked up by SID), or both. What it finds goes through the status
recorder's queue like any callback (an accepted SendOutcome plus the listed status when a cut-off
send did reach Twilio, a retry outcome when it certainly did not, a StatusCallback for a known
SID), so counters stay equal to recounts and campaigns complete where the recorder commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
import msgspec
from structlog.contextvars import bound_contextvars
from twilio.rest import Client

from onboardd.config import Config
from onboardd.db import delivery as delivery_db
from onboardd.db import reconcile as db
from onboardd.domain.campaigns.render import senders
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

BATCH: Final = 500  # messages per pass
LOOKUPS_IN_FLIGHT: Final = 8
LIST_LIMIT: Final = 50  # messages listed per lookup
TAKEOVER_MARGIN_S: Final = 2.0  # beyond the request timeout, before a dead holder's claim moves
# How long before an attempt started a listed message may have been created and still be the
# attempt's. Twilio's DateSent filter has second precision and Twilio's clock is not ours (nor
# the database's, which stamps a claimed row's attempt start): a message of ours must never fall
# outside the window, since missing it means messaging the customer twice. A wide window costs
# only a longer list: another attempt's message inside it is told apart by its SID (the other
# invitation already carries it) and by its body (another customer's offer code). Two minutes
# covers any clock an NTP-synced host keeps, with room for a database on another host.
SLACK: Final = timedelta(minutes=2)
_UNDATED: Final = datetime.max.replace(tzinfo=UTC)

Event = SendOutcome | StatusCallback


class Attempt(msgspec.Struct, frozen=True):
    """A send whose answer never came: what identifies a message it created at Twilio."""

    to: str  # the recipient's address on the channel ("whatsapp:+91..." or "+91...")
    sender: str  # the From address the attempt used (the row's, else the channel's default)
    since: datetime  # when the attempt started
    offer_code: str | None  # the customer's own code, which our message body carries


class ReconcileReport(msgspec.Struct):
    """What one reconciliation pass found."""

    examined: int = 0
    statuses_found: int = 0
    sends_found: int = 0
    sends_not_found: int = 0
    lookups_failed: int = 0
    # The last status lookup's message id when the page was full (pass it as ``after`` to go
    # on); None when the status lookups reached the end.
    resume_after: str | None = None


def candidates(listed: Iterable[ListedMessage], attempt: Attempt) -> list[ListedMessage]:
    """The listed messages the attempt may have created: to the recipient, from the sender,
    created no earlier than the attempt start minus ``SLACK``, and, when Twilio shows a body,
    carrying the customer's own offer code (another salon's or another customer's message from
    the same sender is not ours)."""
    earliest = attempt.since - SLACK
    return [
        item for item in listed
        if item.to == attempt.to
        and item.from_ == attempt.sender
        and (item.date_created is None or item.date_created >= earliest)
        and not (item.body and attempt.offer_code and attempt.offer_code not in item.body)
    ]


def pick(listed: Iterable[ListedMessage], attempt: Attempt,
         taken: Collection[str] = frozenset()) -> ListedMessage | None:
    """The message the attempt created, or None: the earliest candidate whose SID no
    invitation already carries (``taken``: that message belongs to another attempt)."""
    fresh = [item for item in candidates(listed, attempt) if item.sid not in taken]
    return min(fresh, key=lambda item: item.date_created or _UNDATED, default=None)


async def find_send(client: Client, pool: asyncpg.Pool, attempt: Attempt
                    ) -> ListedMessage | None:
    """Ask Twilio whether the attempt created a message: the message, or None when it did not.

    Raises TwilioTransportError / TwilioListError when Twilio cannot be asked: the caller must
    then leave the message under its lease for a later lookup, never resend it.
    """
    listed = await list_messages(client, to=attempt.to, from_=attempt.sender,
                                 date_sent_after=attempt.since - SLACK, limit=LIST_LIMIT)
    fits = candidates(listed, attempt)
    taken = await delivery_db.known_sids(pool, [item.sid for item in fits]) if fits else set()
    return pick(fits, attempt, taken)


def takeover_guard_s(cfg: Config) -> float:
    """How long after an attempt started a dead holder's claim may be taken over: by then any
    request of it has been answered or abandoned ([twilio] request_timeout_s), even one of a
    daemon that only lost its database session and is still running."""
    return cfg.twilio.request_timeout_s + TAKEOVER_MARGIN_S


def sender_of(cfg: Config, channel: str, sender: str | None) -> str:
    """The From address of a message: the row's, else the channel's configured sender."""
    if sender:
        return sender
    whatsapp, sms = senders(cfg.twilio.whatsapp_number, cfg.twilio.sms_number)
    return whatsapp if channel == "whatsapp" else sms


def settle_cut_off(message_id: str, channel: str, sender: str, found: ListedMessage | None,
                   now: datetime, claim_token: int | None = None) -> list[Event]:
    """The events of a cut-off send once Twilio answered: accepted (with the status Twilio
    lists) when it created the message, else a retry (it certainly did not)."""
    if found is None:
        return [SendOutcome(message_id=message_id, outcome="retry", at=now, channel=channel,
                            sender=sender, next_attempt_at=now, claim_token=claim_token,
                            error_message="send was cut off and Twilio has no such message")]
    return [
        SendOutcome(message_id=message_id, outcome="accepted", at=found.date_created or now,
                    channel=channel, sid=found.sid, sender=sender, claim_token=claim_token),
        StatusCallback(sid=found.sid, status=found.status, at=now, error_code=found.error_code),
    ]


async def _sweep_one(services: Services, client: Client, message: db.ExpiredMessage,
                     gate: asyncio.Semaphore, report: ReconcileReport) -> list[Event]:
    """One expired lease: ask Twilio before anything else happens to the message."""
    with bound_contextvars(campaign_id=message.campaign_id, message_id=message.id):
        sender = sender_of(services.cfg, message.channel, message.sender)
        phone = services.cipher.decrypt(message.normalized_phone_enc, "phone")
        attempt = Attempt(to=address(message.channel, phone), sender=sender,
                          since=message.attempt_started_at, offer_code=message.offer_code)
        async with gate:
            try:
                found = await find_send(client, services.pool, attempt)
            except (TwilioTransportError, TwilioListError) as exc:
                report.lookups_failed += 1
                log.warning("sweep_deferred", error=str(exc),
                            hint="still leased: asked again when the lease runs out")
                return []
        if found is None:
            report.sends_not_found += 1
        else:
            report.sends_found += 1
            log.info("cut_off_send_found", sid=found.sid)
        return settle_cut_off(message.id, message.channel, sender, found, datetime.now(UTC),
                              message.claim_token)


async def _status_one(services: Services, client: Client, message: db.AwaitingMessage,
                      gate: asyncio.Semaphore, report: ReconcileReport) -> list[Event]:
    """One accepted message whose final status never arrived: Twilio's status for its SID."""
    with bound_contextvars(campaign_id=message.campaign_id, message_id=message.id):
        phone = services.cipher.decrypt(message.normalized_phone_enc, "phone")
        async with gate:
            try:
                listed = await list_messages(
                    client, to=address(message.channel, phone), from_=None,
                    date_sent_after=message.since - SLACK, limit=LIST_LIMIT)
            except (TwilioTransportError, TwilioListError) as exc:
                report.lookups_failed += 1
                log.warning("reconcile_lookup_failed", error=str(exc))
                return []
        for item in listed:
            if item.sid == message.sid:
                report.statuses_found += 1
                return [StatusCallback(sid=item.sid, status=item.status, at=datetime.now(UTC),
                                       error_code=item.error_code)]
        return []


async def feed(services: Services, items: Sequence[Event]) -> bool:
    """Put events on the recorder's queue and wait until they are applied (not only durable
    in the status inbox: the pass and the campaign completion after it read the messages).

    The wait is bounded by ``[supervisor] shutdown_grace_s`` (a recorder that is down or
    restarting must not hold a job, or a stopping daemon, forever): False, logged once, when it
    ran out; the events stay queued and are recorded when the recorder gets to them. Raises the
    flush's error when the recorder could not record them.
    """
    if not items:
        return True
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await services.queues.status.put(StatusWork(items=list(items), done=done, apply_now=True))
    wait_s = services.cfg.supervisor.shutdown_grace_s
    finished, _ = await asyncio.wait({done}, timeout=wait_s)
    if not finished:
        log.warning("status_events_not_yet_durable", events=len(items), waited_s=wait_s,
                    hint="still queued for the status recorder")
        return False
    done.result()
    return True


async def reconcile_messages(services: Services, *, leases: bool = True, statuses: bool = True,
                             campaign_id: str | None = None,
                             message_ids: Sequence[str] | None = None,
                             client: Client | None = None, limit: int = BATCH,
                             delivery_wait_s: float | None = None,
                             after: str | None = None) -> ReconcileReport:
    """One pass over the messages of a campaign, or of all, or the given ones.

    ``leases``: sweep expired send leases (each leased to this pass, then looked up with
    ``find_send``). ``statuses``: look up accepted messages still queued/sent after the
    delivery wait, with ids after ``after`` (any given message with a SID); the report's
    ``resume_after`` says where the next pass goes on.
    """
    cfg = services.cfg
    wait_s = cfg.campaigns.delivery_wait_s if delivery_wait_s is None else delivery_wait_s
    expired = await db.claim_expired(
        services.pool, limit=limit, lease_s=cfg.campaigns.lease_s,
        guard_s=takeover_guard_s(cfg), instance_id=services.membership.instance_id,
        campaign_id=campaign_id, message_ids=message_ids) if leases else []
    awaiting = await db.awaiting(
        services.pool, delivery_wait_s=wait_s, limit=limit, campaign_id=campaign_id,
        message_ids=message_ids, after=after) if statuses else []
    report = ReconcileReport(examined=len(expired) + len(awaiting),
                             resume_after=awaiting[-1].id if len(awaiting) == limit else None)
    if not report.examined:
        return report
    own_client = client is None
    if client is None:
        client = new_client(services)
    try:
        gate = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)
        found = await asyncio.gather(
            *(_sweep_one(services, client, m, gate, report) for m in expired),
            *(_status_one(services, client, m, gate, report) for m in awaiting))
    finally:
        if own_client:
            await close_client(client)
    await feed(services, [event for events in found for event in events])
    log.info("reconciled", campaign_id=campaign_id, **msgspec.structs.asdict(report))
    return report
