"""Imported customers: the searchable list (PII decrypted, every read logged) and the GDPR
erase (spec §9.1)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Final

import msgspec

from onboardd.db import customers as customers_db
from onboardd.db import imports as db
from onboardd.db import privacy as privacy_db
from onboardd.domain.phones import PhoneError, mask_phone, normalize_phone
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services.errors import ServiceError
from onboardd.services.import_holds import OpenImport, holds_phone, open_imports_holding
from onboardd.services.imports import PREVIEW_TTL_S, ROW_PURPOSE

log = get_logger("customers")

# Tries of an erase whose check of the stored import files an upload overtook.
_ERASE_ATTEMPTS: Final = 3


class CustomerOut(msgspec.Struct, frozen=True, rename="camel"):
    """An imported customer with PII decrypted (only the list endpoint returns these)."""

    id: str
    customer_name: str
    phone: str
    normalized_phone: str
    email: str | None
    status: str
    import_batch_id: str | None
    invited_at: dt.datetime | None
    registered_at: dt.datetime | None
    linked_user_id: str | None
    created_at: dt.datetime
    # yes, no or unknown as the imported file said (a START sets yes); None before it was read.
    consent: str | None = None
    consent_source: str | None = None
    # Why the status is opted_out: refused, blocked, unsubscribed, consent_required or stop.
    opt_out_reason: str | None = None
    name_from_organisation: bool = False


class CustomerPage(msgspec.Struct, frozen=True, rename="camel"):
    """One page of the salon's imported customers, their PII decrypted (the read is logged)."""

    customers: list[CustomerOut]
    page: int
    limit: int
    total: int
    total_pages: int


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _search_terms(services: Services, salon_id: str, search: str | None
                        ) -> tuple[str | None, bytes | None, str | None]:
    """A search as the list query takes it: a name pattern, the keyed hash of the number when
    the text is a whole phone number (read in the salon's region), and which kind it was."""
    if not search:
        return None, None, None
    region = await db.salon_region(services.pool, salon_id) or "IN"
    try:
        phone_hash = services.cipher.phone_hash(normalize_phone(search, region))
    except PhoneError:
        return _like_pattern(search), None, "name"
    return _like_pattern(search), phone_hash, "phone"


async def list_customers(services: Services, *, salon_id: str, status: str | None,
                         search: str | None, page: int, limit: int, actor: str,
                         request_id: str) -> CustomerPage:
    """A page of imported customers; searching by name or by phone through its hash."""
    name_pattern, phone_hash, search_kind = await _search_terms(services, salon_id, search)
    found = await db.list_customers(
        services.pool, salon_id, status=status, name_pattern=name_pattern,
        phone_hash=phone_hash, limit=limit, offset=(page - 1) * limit)
    decrypt = services.cipher.decrypt
    customers = [CustomerOut(
        id=r.id, customer_name=r.customer_name, phone=decrypt(r.phone_enc, "phone"),
        normalized_phone=decrypt(r.normalized_phone_enc, "phone"),
        email=decrypt(r.email_enc, "email") if r.email_enc else None, status=r.status,
        import_batch_id=r.import_batch_id, invited_at=r.invited_at,
        registered_at=r.registered_at, linked_user_id=r.linked_user_id,
        created_at=r.created_at, consent=r.consent, consent_source=r.consent_source,
        opt_out_reason=r.opt_out_reason, name_from_organisation=r.name_from_organisation)
        for r in found.items]
    await db.log_pii_access(services.pool, actor=actor, salon_id=salon_id,
                            action="list_imported_customers", record_count=len(customers),
                            details={"page": page, "limit": limit, "status": status,
                                     "search": search_kind},
                            request_id=request_id, customer_ids=[c.id for c in customers])
    total = found.total
    return CustomerPage(customers=customers, page=page, limit=limit, total=total,
                        total_pages=math.ceil(total / limit) if total else 0)


async def erase(services: Services, *, salon_id: str, customer_id: str, actor: str,
                request_id: str) -> None:
    """GDPR erase: the customer, their invitation messages and every import error row of the
    salon's batches holding their number (the rows' sealed original cells, and their entries
    in the batches' error_log) go, in one transaction; the erase is logged.

    Refused (409, saying when to retry) while an import of the salon that is awaiting
    confirmation or running holds their number in its stored file: that import would bring
    the number back, and its file cannot be edited under it. The file is dropped when the
    import ends, so the erase succeeds then.

    Kept: opt-outs and inbound STOP/START records (keyed by the phone's HMAC, a legal record of
    the refusal, no PII in clear), campaign counters (minus the erased messages) and batch
    counters (numbers only).
    """
    if "\x00" in customer_id:  # no id holds one (PostgreSQL text cannot)
        raise _missing(customer_id)
    cipher = services.cipher
    for _attempt in range(_ERASE_ATTEMPTS):
        found = await customers_db.customer_brief(services.pool, salon_id, customer_id)
        if found is None:
            raise _missing(customer_id)
        e164 = cipher.decrypt(found.normalized_phone_enc, "phone")
        # The stored files are read outside the transaction (seconds for a big workbook, with
        # no row locked meanwhile); the transaction then checks no other import arrived.
        holding, looked = await open_imports_holding(services, salon_id, e164)
        if holding:
            raise _import_holds(customer_id, holding)
        async with services.pool.acquire() as conn, conn.transaction():
            locked = await db.lock_for_erase(conn, customer_id, salon_id)
            if locked is None:
                raise _missing(customer_id)
            if not await privacy_db.open_import_ids(conn, salon_id) <= looked:
                continue  # an upload arrived meanwhile: read its file too
            decode = msgspec.json.Decoder(dict[str, str]).decode
            rows = [(r.batch_id, r.row_number) async for r in db.salon_error_rows(conn, salon_id)
                    if holds_phone(decode(cipher.decrypt(r.original_enc, ROW_PURPOSE)), e164,
                                   r.region)]
            erased = await db.erase_customer(conn, customer_id, salon_id, rows)
            await db.log_pii_access(
                conn, actor=actor, salon_id=salon_id, action="erase", record_count=1,
                details={"customerId": customer_id, "messages": locked.messages,
                         "campaigns": erased.campaigns, "importErrorRows": erased.error_rows},
                request_id=request_id, customer_ids=[customer_id])
        log.info("customer_erased", customer_id=customer_id, messages=locked.messages,
                 import_error_rows=erased.error_rows)
        return
    raise ServiceError(
        "conflict", "customer files keep being uploaded to this salon while the erase runs: "
        "try again in a minute", code="imports_arriving", retry_after_s=60,
        details={"customerId": customer_id})


def _import_holds(customer_id: str, holding: list[OpenImport]) -> ServiceError:
    """409: imports awaiting confirmation or running hold the customer's number; the sentence
    says when the erase will work."""
    running = [i for i in holding if i.status == "processing"]
    waiting = [i for i in holding if i.status != "processing"]
    ttl = dt.timedelta(seconds=PREVIEW_TTL_S)

    def named(batch: OpenImport) -> str:
        return f"'{batch.file_name}' (batch {batch.batch_id})" if batch.file_name else (
            f"batch {batch.batch_id}")

    parts = []
    if running:
        parts.append("being imported now (" + ", ".join(
            f"{named(i)}, {i.progress}% done" for i in running) + ")")
    if waiting:
        parts.append("uploaded and awaiting confirmation (" + ", ".join(
            f"{named(i)}, dropped unless confirmed by "
            f"{(i.created_at + ttl).astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" for i in waiting) + ")")
    message = (f"this customer's number is in a customer file {' and in one '.join(parts)}; "
               "erasing now would let that import bring the number back, so erase them again "
               "once the import has finished (its status shows completed or failed)"
               + (" or its preview has been dropped" if waiting else "")
               + (": usually within minutes" if running and not waiting else ""))
    imports = [{"batchId": i.batch_id, "status": i.status, "fileName": i.file_name,
                "rows": i.rows, "progress": i.progress,
                "expiresAt": None if i.status == "processing" else i.created_at + ttl}
               for i in holding]
    return ServiceError("conflict", message, code="import_in_progress",
                        details={"customerId": customer_id, "imports": imports},
                        retry_after_s=60 if running else None)


# The admin UI ------------------------------------------------------------------------------------

class ListedCustomer(msgspec.Struct, frozen=True):
    """An imported customer in the admin UI's list: the number masked ('+91******3210')."""

    id: str
    customer_name: str
    phone_masked: str
    status: str
    created_at: dt.datetime
    invited_at: dt.datetime | None
    registered_at: dt.datetime | None
    consent: str | None
    consent_source: str | None
    opt_out_reason: str | None
    name_from_organisation: bool


class CustomerList(msgspec.Struct, frozen=True):
    """One page of the admin UI's customer list; `page` is the page shown (a page past the
    end shows the last one)."""

    customers: list[ListedCustomer]
    page: int
    limit: int
    total: int
    total_pages: int


async def masked_page(services: Services, *, salon_id: str, status: str | None,
                      search: str | None, page: int, limit: int, actor: str,
                      request_id: str) -> CustomerList:
    """A page of imported customers with their numbers masked, searched like
    list_customers; the numbers are decrypted only to mask them, and the read is logged."""
    name_pattern, phone_hash, search_kind = await _search_terms(services, salon_id, search)
    found = await db.list_customers(
        services.pool, salon_id, status=status, name_pattern=name_pattern,
        phone_hash=phone_hash, limit=limit, offset=(page - 1) * limit)
    pages = math.ceil(found.total / limit)
    if not found.items and page > pages > 0:
        page = pages
        found = await db.list_customers(
            services.pool, salon_id, status=status, name_pattern=name_pattern,
            phone_hash=phone_hash, limit=limit, offset=(page - 1) * limit)
    decrypt = services.cipher.decrypt
    customers = [ListedCustomer(
        id=r.id, customer_name=r.customer_name,
        phone_masked=mask_phone(decrypt(r.normalized_phone_enc, "phone")), status=r.status,
        created_at=r.created_at, invited_at=r.invited_at, registered_at=r.registered_at,
        consent=r.consent, consent_source=r.consent_source, opt_out_reason=r.opt_out_reason,
        name_from_organisation=r.name_from_organisation) for r in found.items]
    await db.log_pii_access(services.pool, actor=actor, salon_id=salon_id,
                            action="admin_list_customers", record_count=len(customers),
                            details={"page": page, "limit": limit, "status": status,
                                     "search": search_kind, "phones": "masked"},
                            request_id=request_id, customer_ids=[c.id for c in customers])
    return CustomerList(customers=customers, page=page, limit=limit, total=found.total,
                        total_pages=pages)


def _missing(customer_id: str) -> ServiceError:
    return ServiceError("not_found", f"no imported customer {customer_id!r} in this salon",
                        code="customer_not_found")


async def customer_name(services: Services, *, salon_id: str, customer_id: str) -> str:
    """The name of one of the salon's customers (to ask before erasing them)."""
    found = await customers_db.customer_brief(services.pool, salon_id, customer_id)
    if found is None:
        raise _missing(customer_id)
    return found.customer_name


class Revealed(msgspec.Struct, frozen=True):
    """One customer's whole number (E.164), shown on request."""

    id: str
    customer_name: str
    phone: str


async def reveal_phone(services: Services, *, salon_id: str, customer_id: str, actor: str,
                       request_id: str) -> Revealed:
    """One customer's whole number; every reveal is written to pii_access_log."""
    found = await customers_db.customer_brief(services.pool, salon_id, customer_id)
    if found is None:
        raise _missing(customer_id)
    phone = services.cipher.decrypt(found.normalized_phone_enc, "phone")
    await db.log_pii_access(services.pool, actor=actor, salon_id=salon_id,
                            action="reveal_phone", record_count=1,
                            details={"customerId": customer_id}, request_id=request_id,
                            customer_ids=[customer_id])
    return Revealed(id=found.id, customer_name=found.customer_name, phone=phone)
