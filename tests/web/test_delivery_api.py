"""Campaign stats and the per-customer delivery list over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from onboardd.db import delivery as db
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.runtime import Services
from tests.conftest import bearer
from tests.integration.test_status_recorder import accept_all, cb, new_salon, seed_campaign

NOW = datetime.now(UTC)


async def _campaign_with_history(services: Services, salon: str) -> tuple[str, list[str]]:
    """Ten messages: 3 read, 2 delivered, 1 undelivered, 1 failed at send, 1 skipped
    (opted out), 2 pending; one customer registered."""
    campaign, ids = await seed_campaign(services, salon, 10)
    sids = await accept_all(services, ids[:6])
    events: list[SendOutcome | StatusCallback] = [
        *(cb(s, "read") for s in sids[:3]),
        *(cb(s, "delivered") for s in sids[3:5]),
        cb(sids[5], "undelivered", code=30003),
        SendOutcome(ids[6], "failed", NOW, "whatsapp", error_code=21211),
        SendOutcome(ids[7], "skipped", NOW, "whatsapp", error_code=21610, sender="+1",
                    skip_reason="opted_out", opted_out=True),
    ]
    await db.record_batch(services.pool, events, 3600.0)
    await services.pool.execute(
        """UPDATE imported_customers SET status = 'registered', registered_at = now()
           WHERE id = (SELECT imported_customer_id FROM invitation_messages WHERE id = $1)""",
        ids[0])
    return campaign, ids


async def test_stats_shape_and_figures(client: TestClient[Any, Any], services: Services,
                                       salon: str, admin_headers: dict[str, str]) -> None:
    campaign, ids = await _campaign_with_history(services, salon)
    # Two of the six accepted an hour ago: outside the rate window however slow the test is.
    await services.pool.execute(
        "UPDATE invitation_messages SET queued_at = queued_at - interval '1 hour' "
        "WHERE id = ANY($1::text[])", ids[4:6])
    before = await services.pool.fetchval("SELECT now()")
    resp = await client.get(f"/api/salons/{salon}/invitation-campaigns/{campaign}/stats",
                            headers=admin_headers)
    after = await services.pool.fetchval("SELECT now()")
    assert resp.status == 200
    body = await resp.json()
    assert body["target"] == 10
    assert (body["sent"], body["delivered"], body["read"]) == (6, 5, 3)
    assert body["failed"]["total"] == 2
    codes = {f["errorCode"]: f["count"] for f in body["failed"]["byErrorCode"]}
    assert codes == {30003: 1, 21211: 1}
    assert body["skipped"] == {"total": 1, "byReason": {"opted_out": 1}}
    assert body["optedOut"] == 1
    assert body["pending"] == 2
    assert body["progressPercent"] == 80.0
    # Accepted within the 10 s before the server's clock at the request, from the rows' own
    # times: 4 (0.4 per second) unless the test took more than 10 s to get here.
    in_window = [await services.pool.fetchval(
        "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 "
        "AND queued_at > $2::timestamptz - interval '10 seconds'", campaign, at)
        for at in (after, before)]
    assert in_window[1] <= 4
    assert body["currentRatePerSecond"] in {n / 10 for n in range(in_window[0], in_window[1] + 1)}
    assert (body["estimatedCompletionAt"] is not None) == (body["currentRatePerSecond"] > 0)
    assert body["deliveryRate"] == round(5 / 6, 4)
    assert body["readRate"] == 0.6
    assert body["registrationsAttributed"] == 1
    assert body["startedAt"].endswith("Z")


async def test_messages_list_filters_pages_and_masks(client: TestClient[Any, Any],
                                                     services: Services, salon: str,
                                                     admin_headers: dict[str, str]) -> None:
    campaign, _ids = await _campaign_with_history(services, salon)
    base = f"/api/salons/{salon}/invitation-campaigns/{campaign}/messages"
    resp = await client.get(base + "?status=read", headers=admin_headers)
    body = await resp.json()
    assert resp.status == 200 and body["total"] == 3 and len(body["items"]) == 3
    item = body["items"][0]
    assert item["status"] == "read" and item["readAt"] is not None
    assert "*" in item["phone"] and item["customerName"].startswith("Customer")
    page2 = await (await client.get(base + "?page=2&pageSize=4", headers=admin_headers)).json()
    assert page2["total"] == 10 and len(page2["items"]) == 4 and page2["page"] == 2
    past = await (await client.get(base + "?page=9&pageSize=4", headers=admin_headers)).json()
    assert past["items"] == [] and past["total"] == 10
    failed = await (await client.get(base + "?status=failed", headers=admin_headers)).json()
    assert failed["items"][0]["errorMessage"].startswith("Twilio error: 21211")
    bad = await client.get(base + "?status=lost", headers=admin_headers)
    assert bad.status == 422 and (await bad.json())["error"]["details"]["field"] == "status"
    bad = await client.get(base + "?page=0", headers=admin_headers)
    assert bad.status == 422


async def test_tenant_isolation(client: TestClient[Any, Any], services: Services, salon: str,
                                admin_headers: dict[str, str]) -> None:
    other = await new_salon(services)
    campaign, _ids = await _campaign_with_history(services, other)
    for tail in ("stats", "messages"):
        # The campaign of another salon under our salon's path: 404, nothing revealed.
        resp = await client.get(f"/api/salons/{salon}/invitation-campaigns/{campaign}/{tail}",
                                headers=admin_headers)
        assert resp.status == 404
        # Our token on the other salon's path: 403.
        resp = await client.get(f"/api/salons/{other}/invitation-campaigns/{campaign}/{tail}",
                                headers=admin_headers)
        assert resp.status == 403
        owner = bearer(services.tokens, "admin-2", "admin", [other])
        resp = await client.get(f"/api/salons/{other}/invitation-campaigns/{campaign}/{tail}",
                                headers=owner)
        assert resp.status == 200
