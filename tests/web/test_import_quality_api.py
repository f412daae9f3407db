"""The preview's whole-file quality summary and the preview under other columns, over real HTTP
and Postgres: the counts equal the truth of a messy file, and what the importer then does."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from onboardd.jobs import imports as import_jobs
from onboardd.runtime import Services
from tests.campaign_support import add_customers
from tests.conftest import AppFor
from tests.web.messy_import import EXISTING, MESSY_CSV, MESSY_QUALITY
from tests.web.test_imports_api import check_counters, upload, wait_done

Client = TestClient[Any, Any]


async def _confirm(client: Client, salon: str, headers: dict[str, str], batch: str
                   ) -> dict[str, Any]:
    resp = await client.post(f"/api/salons/{salon}/customers/import/{batch}/confirm",
                             headers=headers)
    assert resp.status == 202, await resp.text()
    return await wait_done(client, salon, batch, headers)


async def test_quality_counts_the_whole_messy_file_and_the_import_agrees(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    await add_customers(services.pool, services.cipher, salon, EXISTING)
    body = await upload(client, salon, admin_headers, MESSY_CSV)
    quality = body["quality"]
    assert quality == MESSY_QUALITY
    assert body["mappingFields"] == {
        "name": "Name", "firstName": None, "middleName": None, "lastName": None,
        "organisation": "Company", "phone": ["Mobile"], "email": "Email",
        "consent": ["Accepts Marketing"]}
    assert (quality["willImport"] + quality["duplicatesInFile"] + quality["alreadyCustomers"]
            + quality["invalidRows"] == quality["totalRows"] == body["totalRows"])
    # The ten rows shown agree with the summary: row 11 is an existing customer.
    assert len(body["preview"]) == 10
    by_row = {r["rowNumber"]: r for r in body["preview"]}
    assert by_row[10]["errors"] == ["Duplicate phone number"]
    assert by_row[11]["errors"] == ["Duplicate phone number"]
    assert by_row[7]["errors"] == ["Phone number is a landline and cannot receive SMS or "
                                   "WhatsApp"]
    status = await _confirm(client, salon, admin_headers, body["batchId"])
    check_counters(status)
    assert status["successfulImports"] == quality["willImport"]
    assert status["failedImports"] == quality["invalidRows"]
    assert status["duplicateSkipped"] == (quality["duplicatesInFile"]
                                          + quality["alreadyCustomers"])
    assert status["importedOptedOut"] == quality["importedOptedOut"]
    assert status["consentUnknown"] == quality["consentBlank"]


async def test_quality_follows_the_mapping_and_the_consent_policy(
        app_for: AppFor, salon: str, admin_headers: dict[str, str]) -> None:
    async with app_for(import_default_consent="require") as (client, _svc):
        body = await upload(client, salon, admin_headers, MESSY_CSV, mapping='{"email": ""}')
        quality = body["quality"]
    # Without the email column, row 4 is imported (with a blank consent, so opted out).
    assert quality["invalidEmails"] == 0 and quality["invalidRows"] == 5
    assert quality["willImport"] == 7 and quality["alreadyCustomers"] == 0
    assert quality["defaultConsent"] == "require"
    assert quality["consentBlank"] == 4
    assert quality["importedOptedOut"] == 1 + 4  # the one no, and every blank


async def test_preview_again_with_other_columns_is_kept_for_the_confirm(
        client: Client, salon: str, admin_headers: dict[str, str],
        importer_running: None) -> None:
    body = await upload(client, salon, admin_headers, MESSY_CSV)
    base = f"/api/salons/{salon}/customers/import/{body['batchId']}"
    resp = await client.post(f"{base}/preview", json={"mapping": {"email": None,
                                                                  "organisation": ""}},
                             headers=admin_headers)
    again = await resp.json()
    assert resp.status == 200, again
    assert again["batchId"] == body["batchId"]
    assert "email" not in again["mapping"] and "organisation" not in again["mapping"]
    assert again["confirmUrl"].endswith(f"/{body['batchId']}/confirm")
    quality = again["quality"]
    # Row 4 now imports; row 5 has no name without its company.
    assert quality["invalidEmails"] == 0 and quality["missingNames"] == 2
    assert quality["willImport"] == 6 and quality["namedAfterOrganisation"] == 0
    assert {r["rowNumber"]: r["errors"] for r in again["preview"]}[5] == ["Name is required"]
    # No body: the stored mapping, as just chosen.
    resp = await client.post(f"{base}/preview", headers=admin_headers)
    assert (await resp.json())["quality"] == quality
    status = await _confirm(client, salon, admin_headers, body["batchId"])
    assert status["successfulImports"] == 6
    resp = await client.post(f"{base}/preview", headers=admin_headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "already_confirmed"


async def test_preview_again_refusals(client: Client, salon: str,
                                      admin_headers: dict[str, str],
                                      services: Services) -> None:
    body = await upload(client, salon, admin_headers, MESSY_CSV)
    base = f"/api/salons/{salon}/customers/import/{body['batchId']}"
    resp = await client.post(f"{base}/preview", json={"mapping": {"phone": "Telephone"}},
                             headers=admin_headers)
    error = (await resp.json())["error"]
    assert resp.status == 422
    assert error["details"]["field"] == "mapping.phone"
    assert "'Telephone'" in error["message"]
    resp = await client.post(f"{base}/preview", json={"mapping": {"phone": ""}},
                             headers=admin_headers)
    assert resp.status == 422
    resp = await client.post(f"/api/salons/{salon}/customers/import/nope/preview",
                             headers=admin_headers)
    assert resp.status == 404
    await services.pool.execute(
        "UPDATE customer_import_batches SET created_at = now() - interval '2 days'")
    await import_jobs.expire_previews(services)
    resp = await client.post(f"{base}/preview", headers=admin_headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "preview_expired"
