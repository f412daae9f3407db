"""Real export shapes end to end: uploaded through the API, imported by the importer actor into
the real database, then invited by a campaign through the real dispatcher and the simulator.
Nobody whose file said no (or who was blocked) is ever messaged; START from the customer wins
over the file, a salon's block does not lift."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import msgspec
import pytest

from onboardd.actors import importer
from onboardd.auth import TokenCodec
from onboardd.domain.phones import NOT_MOBILE
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.services import campaigns as campaign_service
from onboardd.services import delivery as delivery_service
from onboardd.services import imports as import_service
from onboardd.services.import_status import import_status
from tests.campaign_support import wait_for
from tests.conftest import bearer
from tests.export_shapes import SHAPES, ExportFile, fresha
from tests.integration.rig import Rig

SENDER = "whatsapp:+14155238886"


async def upload(rig: Rig, tokens: TokenCodec, salon: str, name: str, data: bytes,
                 mapping: str | None = None) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="text/csv")
    if mapping is not None:
        form.add_field("mapping", mapping)
    url = f"{rig.services.public_base_url}/api/salons/{salon}/customers/import"
    headers = bearer(tokens, "admin-1", "admin", [salon])
    async with aiohttp.ClientSession(headers=headers) as h, h.post(url, data=form) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 201, body
        async with h.post(body["confirmUrl"]) as confirmed:
            assert confirmed.status == 202, await confirmed.text()
    return body


async def import_all(services: Services, salon: str, batch: str) -> dict[str, Any]:
    """Run the importer actor until the batch is finished; the status API's body."""
    stopping = asyncio.Event()
    task = asyncio.create_task(importer.run(services, stopping))
    try:
        await wait_for(lambda: _finished(services, batch), timeout_s=20)
    finally:
        stopping.set()
        await task
    return await _status(services, salon, batch)


async def _finished(services: Services, batch: str) -> bool:
    status = await services.pool.fetchval(
        "SELECT status FROM customer_import_batches WHERE id = $1", batch)
    return status in ("completed", "failed")


async def _status(services: Services, salon: str, batch: str) -> dict[str, Any]:
    state = await import_service.batch_status(services, salon, batch)
    body: dict[str, Any] = msgspec.to_builtins(import_status(state, "http://x/status"),
                                               builtin_types=(datetime,))
    return body


async def customers(rig: Rig, salon: str) -> dict[str, Any]:
    rows = await rig.pool.fetch(
        "SELECT * FROM imported_customers WHERE salon_id = $1", salon)
    return {rig.services.cipher.decrypt(r["normalized_phone_enc"], "phone"): r for r in rows}


async def run_campaign(rig: Rig, salon: str) -> str:
    """A WhatsApp campaign to the salon's default audience (pending customers), to the end."""
    campaign_id = await rig.new_campaign(salon)
    await wait_for(lambda: rig.settled(campaign_id), timeout_s=20)
    return campaign_id


def messaged(rig: Rig) -> set[str]:
    return {r.to.removeprefix("whatsapp:") for r in rig.sim.store.all()}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_export_shape_imports_and_no_one_who_said_no_is_messaged(
        shape: str, make_rig: Callable[..., Any], salon: str, tokens: TokenCodec) -> None:
    export: ExportFile = SHAPES[shape]()
    rig = await make_rig()
    body = await upload(rig, tokens, salon, export.file_name, export.data)
    assert body["detectedSource"] == export.slug
    assert body["detectedSourceLabel"]
    assert body["consent"]["defaultConsent"] == "assume"
    assert bool(body["consent"]["columns"]) == export.has_consent
    # The preview shows, for each valid row, which column and which text gave the number.
    for row, want in zip(body["preview"], export.rows, strict=False):
        assert row["phone"] == want.e164
        if want.e164 is not None:
            assert row["phoneColumn"] in body["columns"]
            assert row["phoneValue"] in row["originalData"][row["phoneColumn"]]
            assert (row["status"], row["consent"]) == (want.status, want.consent)
            assert row["nameFromOrganisation"] == want.from_org

    status = await import_all(rig.services, salon, body["batchId"])
    failed = [r for r in export.rows if r.e164 is None]
    assert (status["status"], status["successfulImports"], status["failedImports"],
            status["duplicateSkipped"]) == ("completed", len(export.imported), len(failed), 0)
    assert status["importedOptedOut"] == len(export.opted_out)
    assert status["consentUnknown"] == sum(r.consent == "unknown" for r in export.imported)
    assert [e["errors"] for e in status["errors"]] == [[r.error] for r in failed]

    stored = await customers(rig, salon)
    assert set(stored) == {r.e164 for r in export.imported}
    for want in export.imported:
        row = stored[want.e164]
        assert (row["customer_name"], row["status"], row["consent"], row["opt_out_reason"],
                row["name_from_organisation"]) == (
            want.name, want.status, want.consent, want.reason, want.from_org)
        assert (row["opted_out_at"] is not None) == (want.status == "opted_out")
        if want.reason is not None:
            assert row["consent_source"] in body["columns"]

    await run_campaign(rig, salon)
    sent = messaged(rig)
    assert sent == {r.e164 for r in export.invitable}
    assert not sent & {r.e164 for r in export.opted_out}
    # The greeting: the first name without the honorific; an organisation's whole name.
    for want in export.invitable:
        expected = want.name if want.from_org else want.name.removeprefix("Dr. ").split()[0]
        assert rig.sim_to(want.e164)[0].body.startswith(f"Hi {expected}!")


async def test_a_later_file_saying_no_opts_out_existing_customers_before_they_are_sent(
        make_rig: Callable[..., Any], salon: str, tokens: TokenCodec) -> None:
    """Customers imported as pending (a contact export) are frozen into a campaign; before it
    sends, the salon imports its software's export, where some of them said no or are blocked.
    Those are opted out at once (the duplicates' explicit no), and the campaign skips them at
    send time."""
    # The dispatcher sends only when nudged (no polling), so the frozen campaign waits.
    rig = await make_rig(campaigns_dispatch_poll_s="3600")
    first = await upload(rig, tokens, salon, "contacts.csv", SHAPES["android"]().data)
    await import_all(rig.services, salon, first["batchId"])
    campaign_id = await rig.new_campaign(salon, start=False)
    await campaign_service.start(rig.pool, campaign_id, salon)  # frozen, not yet dispatched
    suite = fresha()
    second = await upload(rig, tokens, salon, suite.file_name, suite.data)
    status = await import_all(rig.services, salon, second["batchId"])
    assert status["existingOptedOut"] == len(suite.opted_out)
    assert status["duplicateSkipped"] == len(suite.imported)
    stored = await customers(rig, salon)
    for want in suite.opted_out:
        assert (stored[want.e164]["status"], stored[want.e164]["opt_out_reason"]) == (
            "opted_out", want.reason)

    nudge(rig.services.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    await wait_for(lambda: rig.settled(campaign_id), timeout_s=20)
    sent = messaged(rig)
    assert not sent & {r.e164 for r in suite.opted_out}
    assert {r.e164 for r in suite.invitable} <= sent
    skipped = await rig.by_phone(campaign_id)
    for want in suite.opted_out:
        assert (skipped[want.e164]["status"], skipped[want.e164]["skip_reason"]) == (
            "skipped", "opted_out")
    # The customer's own opt-out record per sender is not invented for a salon's no.
    assert await rig.pool.fetchval("SELECT count(*) FROM opt_outs") == 0


async def test_start_wins_over_a_no_in_the_file_but_not_over_a_block(
        make_rig: Callable[..., Any], salon: str, tokens: TokenCodec) -> None:
    rig = await make_rig()
    suite = fresha()
    body = await upload(rig, tokens, salon, suite.file_name, suite.data)
    await import_all(rig.services, salon, body["batchId"])
    refused = next(r for r in suite.opted_out if r.reason == "refused")
    blocked = next(r for r in suite.opted_out if r.reason == "blocked")
    for person in (refused, blocked):
        await delivery_service.inbound(rig.services, None, person.e164, SENDER, "START")
    stored = await customers(rig, salon)
    assert (stored[refused.e164]["status"], stored[refused.e164]["consent"],
            stored[refused.e164]["consent_source"], stored[refused.e164]["opt_out_reason"]) == (
        "pending", "yes", "START", None)
    assert (stored[blocked.e164]["status"], stored[blocked.e164]["opt_out_reason"]) == (
        "opted_out", "blocked")
    await run_campaign(rig, salon)
    sent = messaged(rig)
    assert refused.e164 in sent and blocked.e164 not in sent
    # A later STOP wins again.
    await delivery_service.inbound(rig.services, None, refused.e164, SENDER, "STOP")
    row = (await customers(rig, salon))[refused.e164]
    assert (row["status"], row["opt_out_reason"]) == ("opted_out", "stop")


async def test_default_consent_require_invites_only_those_who_said_yes(
        make_rig: Callable[..., Any], salon: str, tokens: TokenCodec) -> None:
    rig = await make_rig(import_default_consent="require")
    suite = fresha()
    body = await upload(rig, tokens, salon, suite.file_name, suite.data)
    assert body["consent"]["defaultConsent"] == "require"
    blank = next(row for row in body["preview"] if row["phone"] == "+919876543217")
    assert (blank["consent"], blank["status"], blank["optOutReason"]) == (
        "unknown", "opted_out", "consent_required")
    status = await import_all(rig.services, salon, body["batchId"])
    assert status["defaultConsent"] == "require"
    unknown = [r for r in suite.imported if r.consent == "unknown"]
    assert status["importedOptedOut"] == len(suite.opted_out) + len(unknown)
    await run_campaign(rig, salon)
    assert messaged(rig) == {r.e164 for r in suite.imported if r.consent == "yes"
                             and r.status == "pending"}


async def test_mapping_override_takes_a_phone_list_and_a_consent_column(
        make_rig: Callable[..., Any], salon: str, tokens: TokenCodec) -> None:
    """The client names the phone columns in its own order and the one consent column to
    read; every candidate tried is listed when none can be used."""
    rig = await make_rig()
    data = (b"Client,Office,Cell,OK to text\r\n"
            b"Asha Rao,080 2345 6700,98765 40001,no\r\n"
            b"Ravi Iyer,080 2345 6701,,yes\r\n"
            b"Lata Menon,080 2345 6702,12345,\r\n")
    body = await upload(rig, tokens, salon, "salon.csv", data, mapping=(
        '{"name": "Client", "phone": ["Cell", "Office"], "consent": "OK to text"}'))
    assert body["mapping"]["phone"] == ["Cell", "Office"]
    assert body["mapping"]["consent"] == ["OK to text"]
    assert body["detectedSource"] is None
    rows = body["preview"]
    assert (rows[0]["phone"], rows[0]["phoneColumn"], rows[0]["status"]) == (
        "+919876540001", "Cell", "opted_out")
    assert rows[1]["errors"] == [NOT_MOBILE]
    assert rows[2]["errors"][0].startswith(NOT_MOBILE + ". Tried: Cell 12345 (invalid); "
                                           "Office ")
    assert "(landline)" in rows[2]["errors"][0] and "2345 6702" not in rows[2]["errors"][0]
