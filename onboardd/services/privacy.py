"""Data-subject rights and audit (spec §9.1, issue 16): everything stored about one imported
customer, decrypted, as one document (the right of access; the erase is
onboardd.services.customers.erase), and the salon's PII access log, a page at a time."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final

import msgspec

from onboardd.db import imports as imports_db
from onboardd.db import privacy as db
from onboardd.domain import audit
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services.errors import ServiceError
from onboardd.services.import_holds import holds_phone
from onboardd.services.imports import ROW_PURPOSE

log = get_logger("privacy")

# The access log entries naming the customer an export carries (newest first).
EXPORT_ACCESSES: Final = 1000
ACCESS_PAGE_MAX: Final = 200


class Funnel(msgspec.Struct, frozen=True, rename="camel"):
    """The funnel facts kept on the customer row (derived from messages and bookings)."""

    invited: bool
    delivered: bool
    last_message_at: dt.datetime | None
    first_booking_at: dt.datetime | None


class ExportedCustomer(msgspec.Struct, frozen=True, rename="camel"):
    """The customer row with phone, E.164 number and email decrypted."""

    id: str
    salon_id: str
    customer_name: str
    phone: str
    normalized_phone: str
    email: str | None
    status: str
    consent: str | None
    consent_source: str | None
    opt_out_reason: str | None
    name_from_organisation: bool
    import_batch_id: str | None
    source_row: int | None
    offer_code: str | None
    download_token: str | None
    invited_at: dt.datetime | None
    last_invited_at: dt.datetime | None
    last_campaign_id: str | None
    registered_at: dt.datetime | None
    linked_user_id: str | None
    opted_out_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    funnel: Funnel


class ExportedErrorRow(msgspec.Struct, frozen=True, rename="camel"):
    """A rejected or skipped row of an imported file that holds the customer's number: its
    original cells (header -> cell) and why it was not imported."""

    batch_id: str
    file_name: str | None
    row_number: int
    cells: dict[str, str]
    errors: list[str]


class ExportedAccess(msgspec.Struct, frozen=True, rename="camel"):
    """Someone read the customer's PII: who (the token's subject), how and when."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    route: str | None
    record_count: int
    request_id: str | None


class CustomerExport(msgspec.Struct, frozen=True, rename="camel"):
    """Everything onboardd stores about one imported customer (spec §9.1, the right of
    access). Opt-outs and STOP/START keywords are kept per number across salons (a refusal
    applies to the sender); the number itself is stored only as the customer row's
    ciphertext and a keyed hash."""

    exported_at: dt.datetime
    customer: ExportedCustomer
    messages: list[db.MessageRecord]
    opt_outs: list[db.OptOutRecord]
    inbound_keywords: list[db.KeywordRecord]
    offer_redemptions: list[db.RedemptionRecord]
    import_error_rows: list[ExportedErrorRow]
    access_log: list[ExportedAccess]


def _missing(customer_id: str) -> ServiceError:
    return ServiceError("not_found", f"no imported customer {customer_id!r} in this salon",
                        code="customer_not_found", details={"customerId": customer_id})


def _customer(record: db.CustomerRecord, decrypt: Any) -> ExportedCustomer:
    return ExportedCustomer(
        id=record.id, salon_id=record.salon_id, customer_name=record.customer_name,
        phone=decrypt(record.phone_enc, "phone"),
        normalized_phone=decrypt(record.normalized_phone_enc, "phone"),
        email=decrypt(record.email_enc, "email") if record.email_enc else None,
        status=record.status, consent=record.consent, consent_source=record.consent_source,
        opt_out_reason=record.opt_out_reason,
        name_from_organisation=record.name_from_organisation,
        import_batch_id=record.import_batch_id, source_row=record.source_row,
        offer_code=record.offer_code, download_token=record.download_token,
        invited_at=record.invited_at, last_invited_at=record.last_invited_at,
        last_campaign_id=record.last_campaign_id, registered_at=record.registered_at,
        linked_user_id=record.linked_user_id, opted_out_at=record.opted_out_at,
        created_at=record.created_at, updated_at=record.updated_at,
        funnel=Funnel(invited=record.funnel_invited, delivered=record.funnel_delivered,
                      last_message_at=record.last_message_at,
                      first_booking_at=record.first_booking_at))


async def export_customer(services: Services, *, salon_id: str, customer_id: str, actor: str,
                          request_id: str) -> CustomerExport:
    """Everything stored about one of the salon's imported customers, decrypted, read in one
    consistent snapshot; the export is written to pii_access_log and the log."""
    if "\x00" in customer_id:  # no id holds one (PostgreSQL text cannot)
        raise _missing(customer_id)
    decrypt = services.cipher.decrypt
    decode_cells = msgspec.json.Decoder(dict[str, str]).decode
    async with services.pool.acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True):
        record = await db.customer_record(conn, customer_id, salon_id)
        if record is None:
            raise _missing(customer_id)
        customer = _customer(record, decrypt)
        e164 = customer.normalized_phone
        messages = await db.customer_messages(conn, customer_id, salon_id)
        opt_outs = await db.opt_outs(conn, record.phone_hash)
        keywords = await db.inbound_keywords(conn, record.phone_hash)
        redemptions = await db.redemptions(conn, customer_id, salon_id, record.linked_user_id)
        error_rows: list[ExportedErrorRow] = []
        async for row in db.salon_error_rows(conn, salon_id):
            cells = decode_cells(decrypt(row.original_enc, ROW_PURPOSE))
            if holds_phone(cells, e164, row.region):
                error_rows.append(ExportedErrorRow(
                    batch_id=row.batch_id, file_name=row.file_name, row_number=row.row_number,
                    cells=cells, errors=row.errors))
        accesses = await db.customer_accesses(conn, salon_id, customer_id, EXPORT_ACCESSES)
    counts = {"messages": len(messages), "optOuts": len(opt_outs),
              "inboundKeywords": len(keywords), "offerRedemptions": len(redemptions),
              "importErrorRows": len(error_rows)}
    await imports_db.log_pii_access(services.pool, actor=actor, salon_id=salon_id,
                                    action="export_customer", record_count=1,
                                    details={"customerId": customer_id, **counts},
                                    request_id=request_id, customer_ids=[customer_id])
    log.info("customer_exported", customer_id=customer_id, **counts)
    return CustomerExport(
        exported_at=dt.datetime.now(dt.UTC), customer=customer, messages=messages,
        opt_outs=opt_outs, inbound_keywords=keywords, offer_redemptions=redemptions,
        import_error_rows=error_rows,
        access_log=[ExportedAccess(id=a.id, at=a.created_at, actor=a.actor, action=a.action,
                                   route=a.route, record_count=a.record_count,
                                   request_id=a.request_id) for a in accesses])


# The salon's PII access log -----------------------------------------------------------------

class AccessLogEntry(msgspec.Struct, frozen=True, rename="camel"):
    """Who (the token's subject) read or exported whose PII, through which route, and when.
    `customerIds` lists the customers whose PII was shown when the read showed a known set
    (null for whole-salon reads such as the analytics export; `recordCount` says how many)."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    route: str | None
    customer_ids: list[str] | None
    record_count: int
    request_id: str | None
    details: dict[str, Any]


class AccessLogPage(msgspec.Struct, frozen=True, rename="camel"):
    """One page of the salon's PII access log, newest first, within [from, to)."""

    entries: list[AccessLogEntry]
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime = msgspec.field(name="to")
    page: int
    limit: int
    total: int
    total_pages: int


async def access_log(services: Services, *, salon_id: str, raw_from: audit.Bound | None,
                     raw_to: audit.Bound | None, customer_id: str | None, page: int,
                     limit: int) -> AccessLogPage:
    """A page of the salon's PII access log; audit.BadParameter for a window that is empty."""
    # The salon exists (the auth middleware checked); its dates are days in its timezone.
    zone = await db.salon_timezone(services.pool, salon_id) or "UTC"
    start, end = audit.window(raw_from, raw_to, zone, dt.datetime.now(dt.UTC))
    found = await db.access_page(services.pool, salon_id, start=start, end=end,
                                 customer_id=customer_id, limit=limit,
                                 offset=(page - 1) * limit)
    entries = [AccessLogEntry(id=e.id, at=e.created_at, actor=e.actor, action=e.action,
                              route=e.route, customer_ids=e.customer_ids,
                              record_count=e.record_count, request_id=e.request_id,
                              details=e.details or {}) for e in found.entries]
    return AccessLogPage(entries=entries, from_=start, to=end, page=page, limit=limit,
                         total=found.total, total_pages=math.ceil(found.total / limit))

