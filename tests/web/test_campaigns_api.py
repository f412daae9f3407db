"""Campaign API: CRUD, validation, preview, audience, send/schedule/pause/resume, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.jobs import campaigns as campaign_jobs
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, add_salon, phone
from tests.conftest import bearer, decode

Client = TestClient[Any, Any]


def base(salon: str) -> str:
    return f"/api/salons/{salon}/invitation-campaigns"


async def create(client: Client, salon: str, headers: dict[str, str], **body: Any) -> Any:
    payload = {"name": "Launch", "channel": "whatsapp"} | body
    resp = await client.post(base(salon), json=payload, headers=headers)
    assert resp.status == 201, await resp.text()
    return decode(await resp.read())


async def error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = decode(await resp.read())["error"]
    return body


async def test_create_list_get_update_delete(client: Client, services: Services, salon: str,
                                             admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    made = await create(client, salon, admin_headers, welcomeOfferId=offer,
                        audience={"status": ["pending", "expired"]})
    assert made["status"] == "draft"
    assert made["messageTemplate"].startswith("Hi {{customer_name}}")
    assert made["audience"]["status"] == ["pending", "expired"]
    assert made["createdBy"] == "admin-1"

    listed = decode(await (await client.get(base(salon), headers=admin_headers)).read())
    assert [c["id"] for c in listed["items"]] == [made["id"]] and listed["total"] == 1

    one = await client.get(f"{base(salon)}/{made['id']}", headers=admin_headers)
    assert decode(await one.read())["name"] == "Launch"

    put = await client.put(f"{base(salon)}/{made['id']}", headers=admin_headers,
                           json={"name": "Renamed", "channel": "both", "welcomeOfferId": offer})
    assert put.status == 200
    assert decode(await put.read())["channel"] == "both"

    gone = await client.delete(f"{base(salon)}/{made['id']}", headers=admin_headers)
    assert gone.status == 204
    missing = await client.get(f"{base(salon)}/{made['id']}", headers=admin_headers)
    await error(missing, 404)


async def test_validation_names_the_field(client: Client, services: Services, salon: str,
                                          admin_headers: dict[str, str]) -> None:
    other = await add_salon(services.pool)
    foreign = await add_offer(services.pool, other)
    inactive = await add_offer(services.pool, salon, active=False)
    active = await add_offer(services.pool, salon)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"messageTemplate": "Hi {{first_name}}", "welcomeOfferId": active},
         "messageTemplate", "first_name"),
        ({"welcomeOfferId": foreign}, "welcomeOfferId", "no welcome offer"),
        ({"welcomeOfferId": inactive}, "welcomeOfferId", "inactive"),
        ({"welcomeOfferId": active, "scheduledFor": past}, "scheduledFor", "in the past"),
        ({"welcomeOfferId": active, "channel": "telegram"}, "channel", "whatsapp, sms, both"),
        ({"welcomeOfferId": active, "audience": {"status": ["registered"]}},
         "audience.status", "registered"),
        ({}, "welcomeOfferId", "offer_amount"),
    ]
    for body, field, words in cases:
        resp = await client.post(base(salon), headers=admin_headers,
                                 json={"name": "X", "channel": "whatsapp"} | body)
        err = await error(resp, 422)
        assert err["details"]["field"] == field, err
        assert words in err["message"], err


async def test_preview_renders_and_warns(client: Client, services: Services, cipher: PiiCipher,
                                         salon: str, admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon, discount_type="percentage", value=15)
    (customer,) = await add_customers(services.pool, cipher, salon, [phone(1)])
    resp = await client.post(f"{base(salon)}/preview", headers=admin_headers,
                             json={"channel": "both", "welcomeOfferId": offer,
                                   "customerId": customer})
    assert resp.status == 200, await resp.text()
    body = decode(await resp.read())
    assert body["text"].startswith("Hi Customer0! 👋")
    assert "Get 15% OFF" in body["text"]
    assert "https://app.salonhub.com/s/glamour?t=" in body["text"]
    assert "Valid for 30 days." in body["text"]
    assert body["encoding"] == "UCS-2" and body["segments"] >= 2
    assert any("UCS-2" in w for w in body["warnings"])
    assert any("whatsappContentSid" in w for w in body["warnings"])
    assert body["customer"]["phone"].endswith("0001") and "*" in body["customer"]["phone"]

    plain = await client.post(f"{base(salon)}/preview", headers=admin_headers,
                              json={"channel": "sms", "messageTemplate": "Hi {{customer_name}}"})
    info = decode(await plain.read())
    assert info["encoding"] == "GSM-7" and info["segments"] == 1 and info["warnings"] == []
    bad = await client.post(f"{base(salon)}/preview", headers=admin_headers,
                            json={"messageTemplate": "Hi {{nme}}"})
    assert "nme" in (await error(bad, 422))["message"]


async def test_audience_count_and_masked_sample(client: Client, services: Services,
                                                cipher: PiiCipher, salon: str,
                                                admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(7)])
    await add_customers(services.pool, cipher, salon, [phone(100)], status="registered")
    made = await create(client, salon, admin_headers, welcomeOfferId=offer)
    resp = await client.get(f"{base(salon)}/{made['id']}/audience", headers=admin_headers)
    body = decode(await resp.read())
    assert body["count"] == 7 and len(body["sample"]) == 5
    assert all("*" in c["phone"] for c in body["sample"])


async def test_send_freezes_audience_and_assigns_codes(
        client: Client, services: Services, cipher: PiiCipher, salon: str,
        admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    ids = await add_customers(services.pool, cipher, salon, [phone(i) for i in range(30)])
    made = await create(client, salon, admin_headers, welcomeOfferId=offer, channel="both")
    resp = await client.post(f"{base(salon)}/{made['id']}/send", headers=admin_headers)
    assert resp.status == 202, await resp.text()
    started = decode(await resp.read())
    assert started["status"] == "sending" and started["targetCustomerCount"] == 30
    assert started["startedAt"] is not None
    rows = await services.pool.fetch(
        "SELECT m.channel, m.status, c.offer_code, c.download_token FROM invitation_messages m "
        "JOIN imported_customers c ON c.id = m.imported_customer_id WHERE m.campaign_id = $1",
        made["id"])
    assert len(rows) == len(ids)
    assert {r["channel"] for r in rows} == {"whatsapp"} and {r["status"] for r in rows} == {
        "pending"}
    codes = [r["offer_code"] for r in rows]
    assert len(set(codes)) == 30 and all(c.startswith("WELCOME-") for c in codes)
    assert all(r["download_token"] for r in rows)
    # Sending again, editing or deleting a sending campaign: 409.
    again = await client.post(f"{base(salon)}/{made['id']}/send", headers=admin_headers)
    await error(again, 409)
    edit = await client.put(f"{base(salon)}/{made['id']}", headers=admin_headers,
                            json={"name": "x", "welcomeOfferId": offer})
    await error(edit, 409)
    await error(await client.delete(f"{base(salon)}/{made['id']}", headers=admin_headers), 409)


async def test_one_sending_campaign_per_salon_and_pause_resume(
        client: Client, services: Services, cipher: PiiCipher, salon: str,
        admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(3)])
    first = await create(client, salon, admin_headers, welcomeOfferId=offer)
    second = await create(client, salon, admin_headers, welcomeOfferId=offer,
                          audience={"status": ["pending", "invited"]})
    assert (await client.post(f"{base(salon)}/{first['id']}/send",
                              headers=admin_headers)).status == 202
    err = await error(await client.post(f"{base(salon)}/{second['id']}/send",
                                        headers=admin_headers), 409)
    assert err["code"] == "campaign_already_sending"
    # The refused start left nothing behind.
    assert await services.pool.fetchval(
        "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1", second["id"]) == 0

    paused = await client.post(f"{base(salon)}/{first['id']}/pause", headers=admin_headers)
    assert decode(await paused.read())["status"] == "paused"
    await error(await client.post(f"{base(salon)}/{first['id']}/pause",
                                  headers=admin_headers), 409)
    assert (await client.post(f"{base(salon)}/{second['id']}/send",
                              headers=admin_headers)).status == 202
    err = await error(await client.post(f"{base(salon)}/{first['id']}/resume",
                                        headers=admin_headers), 409)
    assert err["code"] == "campaign_already_sending"
    await client.post(f"{base(salon)}/{second['id']}/pause", headers=admin_headers)
    resumed = await client.post(f"{base(salon)}/{first['id']}/resume", headers=admin_headers)
    assert decode(await resumed.read())["status"] == "sending"


async def test_empty_audience_is_422(client: Client, services: Services, salon: str,
                                     admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    made = await create(client, salon, admin_headers, welcomeOfferId=offer)
    err = await error(await client.post(f"{base(salon)}/{made['id']}/send",
                                        headers=admin_headers), 422)
    assert err["details"]["field"] == "audience"
    again = decode(await (await client.get(f"{base(salon)}/{made['id']}",
                                           headers=admin_headers)).read())
    assert again["status"] == "draft"


async def test_schedule_then_scheduler_starts_it_after_downtime(
        client: Client, services: Services, cipher: PiiCipher, salon: str,
        admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(4)])
    made = await create(client, salon, admin_headers, welcomeOfferId=offer)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    resp = await client.post(f"{base(salon)}/{made['id']}/send", headers=admin_headers,
                             json={"scheduledFor": later})
    assert decode(await resp.read())["status"] == "scheduled"
    await campaign_jobs.start_due(services)  # not due yet
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", made["id"]) == "scheduled"
    # The daemon was down past the scheduled time: the first pass after start sends it.
    await services.pool.execute(
        "UPDATE invitation_campaigns SET scheduled_for = now() - interval '3 hours' "
        "WHERE id = $1", made["id"])
    await campaign_jobs.start_due(services)
    row = await services.pool.fetchrow(
        "SELECT status, target_customer_count FROM invitation_campaigns WHERE id = $1",
        made["id"])
    assert (row["status"], row["target_customer_count"]) == ("sending", 4)
    past = await client.post(f"{base(salon)}/{made['id']}/send", headers=admin_headers,
                             json={"scheduledFor": "2020-01-01T00:00:00Z"})
    assert (await error(past, 409))["details"]["status"] == "sending"


async def test_tenant_isolation_every_endpoint(client: Client, services: Services,
                                               tokens: TokenCodec, salon: str,
                                               admin_headers: dict[str, str]) -> None:
    offer = await add_offer(services.pool, salon)
    made = await create(client, salon, admin_headers, welcomeOfferId=offer)
    other = await add_salon(services.pool)
    other_admin = bearer(tokens, "admin-2", "admin", [other])
    one = f"{base(other)}/{made['id']}"
    for method, path in [("GET", one), ("PUT", one), ("DELETE", one), ("GET", one + "/audience"),
                         ("POST", one + "/send"), ("POST", one + "/pause"),
                         ("POST", one + "/resume")]:
        payload = {"name": "x", "welcomeOfferId": offer} if method == "PUT" else None
        resp = await client.request(method, path, headers=other_admin, json=payload)
        assert resp.status == 404, (method, path, await resp.text())
    preview = await client.post(f"{base(other)}/preview", headers=other_admin,
                                json={"campaignId": made["id"]})
    assert preview.status == 404
    listed = decode(await (await client.get(base(other), headers=other_admin)).read())
    assert listed["items"] == []
    # And another salon's admin cannot reach this salon's URLs at all.
    denied = await client.get(f"{base(salon)}/{made['id']}", headers=other_admin)
    assert denied.status == 403


async def test_body_errors_name_missing_and_unknown_fields(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str]) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"channel": "sms"}, "name", "name: is required"),
        ({"name": "X", "welcomeOfferID": "o"}, "welcomeOfferID", "unknown field"),
        ({"name": "X", "audience": {"statuses": ["pending"]}}, "audience.statuses",
         "unknown field"),
    ]
    for body, field, words in cases:
        err = await error(await client.post(base(salon), headers=admin_headers, json=body), 422)
        assert err["details"]["field"] == field, err
        assert words in err["message"], err
    # Preview looks the offer up within the salon: another salon's offer does not exist here.
    foreign = await add_offer(services.pool, await add_salon(services.pool))
    err = await error(await client.post(f"{base(salon)}/preview", headers=admin_headers,
                                        json={"welcomeOfferId": foreign}), 422)
    assert err["details"]["field"] == "welcomeOfferId" and "no welcome offer" in err["message"]


async def paused_campaign(client: Client, services: Services, cipher: PiiCipher, salon: str,
                          headers: dict[str, str]) -> Any:
    """A campaign to two customers, sent and then paused before anything was sent."""
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(2)])
    made = await create(client, salon, headers, welcomeOfferId=offer)
    assert (await client.post(f"{base(salon)}/{made['id']}/send", headers=headers)).status == 202
    paused = await client.post(f"{base(salon)}/{made['id']}/pause", headers=headers)
    assert decode(await paused.read())["status"] == "paused"
    return made


async def test_resuming_a_campaign_whose_messages_all_settled_completes_it(
        client: Client, services: Services, cipher: PiiCipher, salon: str,
        admin_headers: dict[str, str]) -> None:
    made = await paused_campaign(client, services, cipher, salon, admin_headers)
    # While paused, every message reached a final status (here: skipped, as an opt-out does).
    await services.pool.execute(
        "UPDATE invitation_messages SET status = 'skipped', skip_reason = 'opted_out' "
        "WHERE campaign_id = $1", made["id"])
    resumed = await client.post(f"{base(salon)}/{made['id']}/resume", headers=admin_headers)
    assert resumed.status == 200
    body = decode(await resumed.read())
    assert body["status"] == "completed" and body["completedAt"] is not None
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", made["id"]) == "completed"


async def test_resuming_with_unsent_messages_keeps_sending(
        client: Client, services: Services, cipher: PiiCipher, salon: str,
        admin_headers: dict[str, str]) -> None:
    made = await paused_campaign(client, services, cipher, salon, admin_headers)
    resumed = await client.post(f"{base(salon)}/{made['id']}/resume", headers=admin_headers)
    assert decode(await resumed.read())["status"] == "sending"
