"""The admin UI's campaign pages on the real app and database: the list, the builder (variable
buttons, live preview, audience count, cost estimate, field errors, send and schedule) and the
live page (figures from the database, pause and resume, other salons' campaigns)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bs4 import BeautifulSoup

from onboardd.config import Config
from onboardd.db import delivery as delivery_db
from onboardd.domain.campaigns.audience import TARGETABLE
from onboardd.domain.templates import VARIABLES
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, add_salon, phone
from tests.integration.test_status_recorder import accept_all, cb, seed_campaign
from tests.web.admin.conftest import Admin, soup, words

NEW = "/admin/campaigns/new"
PANELS = NEW + "/panels"


async def add_batch(services: Services, salon: str, file_name: str) -> str:
    """A completed import batch."""
    batch: str = await services.pool.fetchval(
        "INSERT INTO customer_import_batches (salon_id, imported_by, file_name, status, "
        "successful_imports) VALUES ($1, 'admin-1', $2, 'completed', 3) RETURNING id",
        salon, file_name)
    return batch


def form(**fields: Any) -> list[tuple[str, str]]:
    """The builder's fields as a browser posts them (status may repeat)."""
    base: dict[str, Any] = {"name": "Launch", "channel": "sms",
                            "message_template": "Hi {{customer_name}}, welcome!",
                            "status": ["pending"], "schedule": "now"}
    base.update(fields)
    out: list[tuple[str, str]] = []
    for key, value in base.items():
        for one in value if isinstance(value, list) else [value]:
            out.append((key, str(one)))
    return out


async def panels(admin: Admin, **fields: Any) -> BeautifulSoup:
    response = await admin.post(PANELS, form(**fields))
    body = await response.text()
    assert response.status == 200, body[:2000]
    return soup(body)


def count_of(page: BeautifulSoup) -> int:
    return int(words(page.find(id="audience-count").find("strong")).replace(",", ""))


async def test_builder_renders_variables_offers_and_batches(
        admin: Admin, services: Services, salon: str) -> None:
    offer = await add_offer(services.pool, salon, discount_type="percentage", value=15)
    await add_offer(services.pool, salon, active=False, value=777)
    await add_batch(services, salon, "march-clients.csv")
    page = await admin.page(NEW)
    buttons = [b["data-variable"] for b in page.select("button[data-variable]")]
    assert buttons == list(VARIABLES)
    assert all(b.get("type") == "button" for b in page.select("button[data-variable]"))
    options = {o["value"]: words(o) for o in page.find(id="f-offer").find_all("option")}
    assert options[""] == "No offer" and "15%" in options[offer] and len(options) == 2
    assert page.find(id="f-offer").find("option", selected=True)["value"] == offer
    batches = [words(o) for o in page.find(id="f-batch").find_all("option")]
    assert batches[0] == "Every import" and "march-clients.csv" in batches[1]
    statuses = [i["value"] for i in page.find(id="f-status").find_all("input")]
    assert statuses == list(TARGETABLE)
    for control in page.select("input:not([type=hidden]), select, textarea"):
        if control.get("type") in ("radio", "checkbox"):
            assert control.find_parent("label") is not None
        else:
            assert page.find("label", attrs={"for": control["id"]}) is not None, control
    assert "Both" in words(page.find(id="f-channel")) and "SMS instead" in words(
        page.find(id="f-channel"))
    assert "Asia/Kolkata" in words(page.find("label", attrs={"for": "f-scheduled-for"}))
    # Nobody imported yet: the preview uses the sample customer, the count is 0.
    assert "Hi Priya!" in words(page.find(id="preview"))
    assert count_of(page) == 0


async def test_preview_for_a_real_customer_with_segments(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    offer = await add_offer(services.pool, salon)
    ids = await add_customers(services.pool, cipher, salon, [phone(i) for i in range(3)])
    page = await admin.page(NEW)
    choices = [o["value"] for o in page.find(id="f-customer").find_all("option")]
    assert sorted(choices[1:]) == sorted(ids)
    assert "+91******0001" in words(page.find(id="f-customer"))
    template = "Hi {{customer_name}}! 👋 Get {{offer_amount}} off at {{salon_name}}."
    found = await panels(admin, customer_id=ids[1], welcome_offer_id=offer, channel="both",
                         message_template=template)
    preview = found.find(id="preview")
    assert preview["hx-swap-oob"] == "innerHTML"
    assert words(preview.find("pre")) == "Hi Customer1! 👋 Get ₹100 off at Glamour Studio."
    assert "Customer1 Test (+91******0001)" in words(preview)
    facts = dict(zip([words(d) for d in preview.find_all("dt")],
                     [words(d) for d in preview.find_all("dd")], strict=True))
    assert facts["SMS encoding"] == "UCS-2" and facts["SMS segments"] == "1"
    assert "ContentSid" in words(preview.find(class_="warnings"))
    broken = await panels(admin, message_template="Hi {{nme}}")
    assert "nme" in words(broken.find(id="preview").find(class_="field-error"))
    assert "appears once" in words(broken.find(id="estimate"))


async def test_audience_count_equals_the_database(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    first = await add_batch(services, salon, "a.csv")
    second = await add_batch(services, salon, "b.csv")
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(5)],
                        batch_id=first)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(10, 14)],
                        status="invited", batch_id=second)
    await add_customers(services.pool, cipher, salon, [phone(20)], status="registered")
    # Two of the first batch were imported long ago (before 2021-01-01 in India).
    await services.pool.execute(
        "UPDATE imported_customers SET created_at = '2020-12-31T18:00:00Z' WHERE id IN "
        "(SELECT id FROM imported_customers WHERE import_batch_id = $1 ORDER BY id LIMIT 2)",
        first)
    cases: list[tuple[dict[str, Any], str, list[Any]]] = [
        ({}, "status = 'pending'", []),
        ({"status": ["pending", "invited"]}, "status IN ('pending', 'invited')", []),
        ({"status": list(TARGETABLE), "import_batch_id": second},
         "import_batch_id = $2", [second]),
        ({"imported_after": "2021-01-01"}, "status = 'pending' AND created_at >= $2",
         [datetime(2020, 12, 31, 18, 30, tzinfo=UTC)]),
    ]
    for fields, where, args in cases:
        truth = await services.pool.fetchval(
            f"SELECT count(*) FROM imported_customers WHERE salon_id = $1 AND {where}",
            salon, *args)
        assert count_of(await panels(admin, **fields)) == truth, fields
    assert count_of(await panels(admin, imported_after="2021-01-01")) == 3
    none_ticked = await panels(admin, status=[])
    assert "Tick at least one status" in words(none_ticked.find(id="audience-count"))


async def test_a_dashboard_stage_is_handed_over(
        admin: Admin, services: Services, salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 6, status="completed")
    sids = await accept_all(services, ids[:5])
    await delivery_db.record_batch(services.pool, [cb(s, "delivered") for s in sids[:3]],
                                   3600.0)
    await services.pool.execute(
        "UPDATE imported_customers SET status = 'registered', registered_at = now() WHERE id = "
        "(SELECT imported_customer_id FROM invitation_messages WHERE id = $1)", ids[0])
    truth = await services.pool.fetchval(
        """SELECT count(DISTINCT c.id) FROM imported_customers c
           JOIN invitation_messages m ON m.imported_customer_id = c.id
           WHERE c.salon_id = $1 AND m.status IN ('delivered', 'read')
             AND c.registered_at IS NULL AND c.status = ANY($2::text[])""",
        salon, list(TARGETABLE))
    assert truth == 2
    page = await admin.page(f"{NEW}?stage=delivered&campaign={campaign}")
    assert ("Customers delivered but not registered, of the campaign “Test” (from the "
            "dashboard)") in words(page.find(id="f-audience"))
    assert page.find("input", attrs={"name": "handover"}).has_attr("checked")
    assert count_of(page) == truth
    handed = [("handover", "1"), ("stage", "delivered"), ("stage_campaign", campaign)]
    found = await admin.post(PANELS, form(status=list(TARGETABLE)) + handed)
    assert count_of(soup(await found.text())) == truth
    # Unticked, the dashboard's audience is cleared: every targetable customer counts.
    cleared = await panels(admin, status=list(TARGETABLE), stage="delivered",
                           stage_campaign=campaign)
    assert count_of(cleared) == 5
    # A stage that cannot be invited says so.
    registered = await admin.page(f"{NEW}?stage=registered")
    assert "not invited again" in words(registered.find(id="audience-count"))


async def test_cost_estimate_uses_the_configured_prices(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str,
        make_config: Callable[..., Config]) -> None:
    services.cfg = make_config(pricing_sms_paisa_per_segment="30",
                               pricing_whatsapp_paisa_per_message="80",
                               twilio_whatsapp_rate_per_s="2", twilio_sms_rate_per_s="1")
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(150)])
    long_text = "Hello {{customer_name}}, " + "a" * 170  # GSM-7, two segments

    def rows(page: BeautifulSoup) -> dict[str, str]:
        table = page.find(id="estimate").find("table")
        return {words(r.find("th")): words(r.find("td")) for r in table.find_all("tr")}

    sms = rows(await panels(admin, channel="sms", message_template=long_text))
    assert sms["Messages"] == "150"
    assert sms["SMS"] == "150 × 2 segments × ₹0.30 = ₹90"
    assert sms["Estimated cost"] == "₹90"
    assert sms["Time to send"] == "about 3 minutes"  # 150 s at 1 a second
    whatsapp = rows(await panels(admin, channel="whatsapp", message_template=long_text))
    assert whatsapp["WhatsApp"] == "150 × ₹0.80 = ₹120"
    assert whatsapp["Estimated cost"] == "₹120" and "SMS" not in whatsapp
    assert whatsapp["Time to send"] == "about 2 minutes"  # 75 s at 2 a second
    both = rows(await panels(admin, channel="both", message_template=long_text))
    assert both["Estimated cost"] == "₹120 (at most ₹210)"
    assert both["SMS fallback, if everybody needed it"] == "150 × 2 segments × ₹0.30 = ₹90"
    page = await admin.page(NEW)
    assert "₹0.30 per SMS segment" in words(page)


async def test_a_bad_template_is_shown_next_to_the_field(
        admin: Admin, services: Services, salon: str) -> None:
    response = await admin.post(NEW, form(name="Spring", message_template="Hi {{nme}}",
                                          action="draft"), htmx=False)
    assert response.status == 422
    page = soup(await response.text())
    area = page.find(id="f-template")
    assert area["aria-invalid"] == "true"
    error = page.find(id=area["aria-describedby"].split()[0])
    assert "Unknown template variable(s): {{nme}}" in words(error)
    assert error.find_previous("textarea") is area
    assert area.get_text().strip() == "Hi {{nme}}" and page.find(id="f-name")["value"] == "Spring"
    assert page.find(id="form-problems").find("a")["href"] == "#f-template"
    assert await services.pool.fetchval("SELECT count(*) FROM invitation_campaigns") == 0
    # Problems the form sees itself are all shown at once, each at its field.
    response = await admin.post(NEW, form(name="", status=[], schedule="later",
                                          message_template="Hi {customer_name}",
                                          action="send"))
    page = soup(await response.text())
    assert response.status == 422
    assert "name" in words(page.find(id="err-f-name")).lower()
    assert "Malformed placeholder" in words(page.find(id="err-f-template"))
    assert "Tick at least one status" in words(page.find(id="err-f-status"))
    assert "pick the date and time" in words(page.find(id="err-f-scheduled-for")).lower()


async def test_send_creates_the_campaign_and_goes_to_its_live_page(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(4)])
    response = await admin.post(NEW, form(welcome_offer_id=offer, action="send",
                                          message_template="Hi {{customer_name}}\r\n"
                                                           "{{offer_amount}} off"))
    assert response.status == 200, await response.text()
    target = response.headers["HX-Redirect"]
    row = await services.pool.fetchrow("SELECT * FROM invitation_campaigns")
    assert target == f"/admin/campaigns/{row['id']}"
    assert (row["status"], row["target_customer_count"], row["channel"]) == ("sending", 4, "sms")
    assert row["message_template"] == "Hi {{customer_name}}\n{{offer_amount}} off"
    assert row["created_by"] == "admin-1"
    page = await admin.page(target)
    assert words(page.find("h1")) == "Launch"
    assert page.find("form", action=f"{target}/pause") is not None
    # A plain form post (no htmx) gets a 303; a draft is saved, not sent.
    plain = await admin.post(NEW, form(name="Later", welcome_offer_id=offer, action="draft"),
                             htmx=False)
    assert plain.status == 303
    draft = await services.pool.fetchrow(
        "SELECT id, status FROM invitation_campaigns WHERE name = 'Later'")
    assert plain.headers["Location"] == f"/admin/campaigns/{draft['id']}"
    assert draft["status"] == "draft"
    listed = await admin.page("/admin/campaigns")
    assert [words(a) for a in listed.select("tbody td[data-label=Name] a")] == ["Later", "Launch"]
    assert "Sending" in words(listed.find("tbody"))


async def test_edit_and_delete_a_draft(admin: Admin, services: Services, salon: str) -> None:
    offer = await add_offer(services.pool, salon)
    batch = await add_batch(services, salon, "april.csv")
    response = await admin.post(NEW, form(name="Draft one", welcome_offer_id=offer,
                                          status=["pending", "expired"], import_batch_id=batch,
                                          imported_after="2026-03-01", action="draft"))
    one = response.headers["HX-Redirect"]
    page = await admin.page(one)
    assert page.find("a", href=one + "/edit") is not None
    edit = await admin.page(one + "/edit")
    assert edit.find("form", id="builder")["action"] == one + "/edit"
    assert edit.find(id="f-name")["value"] == "Draft one"
    assert [i["value"] for i in edit.select("#f-status input[checked]")] == ["pending",
                                                                            "expired"]
    assert edit.find(id="f-batch").find("option", selected=True)["value"] == batch
    assert edit.find(id="f-imported-after")["value"] == "2026-03-01"
    saved = await admin.post(one + "/edit", form(name="Draft two", welcome_offer_id=offer,
                                                 channel="both", action="draft"))
    assert saved.headers["HX-Redirect"] == one
    row = await services.pool.fetchrow("SELECT name, channel, status, audience "
                                       "FROM invitation_campaigns")
    assert (row["name"], row["channel"], row["status"]) == ("Draft two", "both", "draft")
    gone = await admin.post(one + "/delete", {"confirm": "yes"})
    assert gone.headers["HX-Redirect"] == "/admin/campaigns"
    assert await services.pool.fetchval("SELECT count(*) FROM invitation_campaigns") == 0


async def test_deleting_a_draft_asks_first(admin: Admin, services: Services,
                                           salon: str) -> None:
    offer = await add_offer(services.pool, salon)
    one = (await admin.post(NEW, form(name="Old draft", welcome_offer_id=offer,
                                      action="draft"))).headers["HX-Redirect"]

    async def drafts() -> int:
        count: int = await services.pool.fetchval("SELECT count(*) FROM invitation_campaigns")
        return count

    # The live page's button only asks (a GET, inline for htmx).
    page = await admin.page(one)
    box = page.find(id="delete-draft")
    ask = box.find("form")
    assert (ask["method"], ask["action"], ask["hx-get"], ask["hx-target"]) == (
        "get", one + "/delete", one + "/delete", "#delete-draft")
    assert words(ask.find("button")) == "Delete draft"
    question = soup(await (await admin.get(one + "/delete", htmx=True)).text())
    assert "Delete this draft" in words(question) and "Old draft" in words(question)
    confirm = question.find("form", method="post")
    assert confirm["action"] == confirm["hx-post"] == one + "/delete"
    assert confirm.find("input", attrs={"name": "confirm"})["value"] == "yes"
    assert [words(b) for b in confirm.find_all("button")] == ["Delete for good", "Cancel"]
    cancel = confirm.find("button", string="Cancel")
    assert (cancel["type"], cancel["hx-get"]) == ("button", one + "/delete-button")
    again = soup(await (await admin.get(one + "/delete-button", htmx=True)).text())
    assert words(again.find("button")) == "Delete draft"
    assert await drafts() == 1
    # Without JavaScript the question is a page of its own, with a Cancel link back.
    plain = await admin.page(one + "/delete")
    assert words(plain.find("h1")) == "Delete a draft"
    assert plain.find("form", method="post", action=one + "/delete") is not None
    assert not plain.find("form", method="post").has_attr("hx-post")
    assert words(plain.find("a", href=one, string="Cancel")) == "Cancel"
    # A POST without the confirmation only asks again; the confirmed one deletes.
    unconfirmed = await admin.post(one + "/delete", {})
    assert unconfirmed.status == 200 and unconfirmed.headers["HX-Retarget"] == "#delete-draft"
    assert "Delete this draft" in words(soup(await unconfirmed.text()))
    unconfirmed = await admin.post(one + "/delete", {"csrf": admin.csrf}, htmx=False,
                                   csrf=False)
    assert unconfirmed.status == 200
    assert await drafts() == 1
    done = await admin.post(one + "/delete", {"csrf": admin.csrf, "confirm": "yes"},
                            htmx=False, csrf=False)
    assert (done.status, done.headers["Location"]) == (303, "/admin/campaigns")
    assert await drafts() == 0


async def test_a_sending_campaign_offers_no_delete(admin: Admin, services: Services,
                                                   salon: str) -> None:
    campaign, _ids = await seed_campaign(services, salon, 1)
    one = f"/admin/campaigns/{campaign}"
    assert (await admin.page(one)).find(id="delete-draft") is None
    asked = await admin.get(one + "/delete")
    assert (asked.status, asked.headers["Location"]) == (303, one)
    refused = await admin.post(one + "/delete", {"confirm": "yes"})
    assert refused.status == 409
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", campaign) == "sending"


EDGE = "0001-01-01 is too far in the past or the future: give a date such as 2026-05-01"


async def test_a_date_at_the_calendars_edge_is_a_sentence_not_a_500(
        admin: Admin, services: Services, salon: str) -> None:
    """Year 1 in India is before year 1 in UTC: refused in words at the field."""
    count = (await panels(admin, imported_after="0001-01-01")).find(id="audience-count")
    assert EDGE.capitalize() in words(count)
    for fields, error in [({"imported_after": "0001-01-01"}, "err-f-imported-after"),
                          ({"schedule": "later", "scheduled_for": "0001-01-01T00:00"},
                           "err-f-scheduled-for")]:
        response = await admin.post(NEW, form(action="send", **fields))
        assert response.status == 422, fields
        page = soup(await response.text())
        assert EDGE.capitalize() in words(page.find(id=error)), fields
    assert await services.pool.fetchval("SELECT count(*) FROM invitation_campaigns") == 0


async def test_the_builder_masks_numbers_and_logs_the_read(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    ids = await add_customers(services.pool, cipher, salon, [phone(i) for i in range(10)])
    response = await admin.get(NEW)
    html = await response.text()
    assert response.status == 200
    page = soup(html)
    options = page.find(id="f-customer").find_all("option")[1:]
    assert len(options) == 8 and all("+91******" in words(o) for o in options)
    shown = re.search(r"For Customer(\d) Test \(\+91\*{6}000(\d)\)", words(page.find(id="preview")))
    assert shown is not None and shown[1] == shown[2]
    read = {o["value"] for o in options} | {ids[int(shown[1])]}
    for i in range(10):  # the whole numbers are nowhere in the page
        assert phone(i)[3:] not in html and phone(i)[-6:] not in html
    logged = await services.pool.fetch("SELECT * FROM pii_access_log")
    assert len(logged) == 1
    row = logged[0]
    assert (row["action"], row["actor"], row["salon_id"], row["record_count"]) == (
        "builder_sample_customers", "admin-1", salon, len(read))
    assert sorted(row["customer_ids"]) == sorted(read)
    assert row["request_id"] == response.headers["X-Request-Id"]
    # The live preview for one customer: one more read, of that one.
    found = await admin.post(PANELS, form(customer_id=ids[9]))
    html = await found.text()
    assert "Customer9 Test (+91******0009)" in words(soup(html).find(id="preview"))
    assert phone(9)[3:] not in html
    row = await services.pool.fetchrow("SELECT * FROM pii_access_log WHERE request_id = $1",
                                       found.headers["X-Request-Id"])
    assert (row["action"], row["record_count"], row["customer_ids"]) == (
        "builder_sample_customers", 1, [ids[9]])
    assert await services.pool.fetchval("SELECT count(*) FROM pii_access_log") == 2


async def test_a_refused_send_keeps_the_draft_and_says_why(
        admin: Admin, services: Services, salon: str) -> None:
    offer = await add_offer(services.pool, salon)
    response = await admin.post(NEW, form(welcome_offer_id=offer, action="send"), htmx=False)
    assert response.status == 422
    page = soup(await response.text())
    draft = await services.pool.fetchrow("SELECT id, status FROM invitation_campaigns")
    assert draft["status"] == "draft"
    assert page.find("form", id="builder")["action"] == f"/admin/campaigns/{draft['id']}/edit"
    assert "Saved as a draft, not sent" in words(page.find(id="form-problems"))
    assert "No customer matches this audience" in words(page.find(id="err-f-audience"))


async def test_schedule_later_stores_the_salon_time_as_utc(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(1)])
    response = await admin.post(NEW, form(welcome_offer_id=offer, action="send",
                                          schedule="later", scheduled_for="2030-01-15T09:30"))
    assert response.status == 200, await response.text()
    row = await services.pool.fetchrow("SELECT id, status, scheduled_for FROM "
                                       "invitation_campaigns")
    assert row["status"] == "scheduled"
    assert row["scheduled_for"] == datetime(2030, 1, 15, 4, 0, tzinfo=UTC)  # 09:30 in India
    page = await admin.page(f"/admin/campaigns/{row['id']}")
    assert "15 Jan 2030, 09:30" in words(page.find(id="live"))
    edit = await admin.page(f"/admin/campaigns/{row['id']}/edit")
    assert edit.find(id="f-scheduled-for")["value"] == "2030-01-15T09:30"
    past = await admin.post(f"/admin/campaigns/{row['id']}/edit",
                            form(welcome_offer_id=offer, action="send", schedule="later",
                                 scheduled_for="2020-01-01T10:00"))
    assert past.status == 422
    assert "passed" in words(soup(await past.text()).find(id="err-f-scheduled-for"))


async def test_live_page_matches_the_database_and_polls_while_sending(
        admin: Admin, services: Services, salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 8)
    sids = await accept_all(services, ids[:6])
    await delivery_db.record_batch(services.pool, [
        *(cb(s, "read") for s in sids[:2]), *(cb(s, "delivered") for s in sids[2:4]),
        cb(sids[4], "undelivered", code=30003)], 3600.0)
    row = await services.pool.fetchrow("SELECT * FROM invitation_campaigns WHERE id = $1",
                                       campaign)
    page = await admin.page(f"/admin/campaigns/{campaign}")
    tiles = {words(t.find(class_="label")): words(t.find(class_="value"))
             for t in page.select("#live .tile")}
    assert tiles["Customers"] == str(row["target_customer_count"]) == "8"
    assert tiles["Sent"] == str(row["messages_sent"]) == "6"
    assert tiles["Delivered"] == str(row["messages_delivered"]) == "4"
    assert tiles["Read"] == str(row["messages_read"]) == "2"
    assert tiles["Failed"] == str(row["messages_failed"]) == "1"
    failed = words(page.find("caption", string="Failed, by reason").find_parent("table"))
    assert "30003" in failed and "Unreachable destination handset" in failed
    live = page.find(id="live")
    assert live["hx-trigger"] == "every 3s" and "status=sending" in live["hx-get"]
    assert page.find(id="live-summary")["aria-live"] == "polite"
    fragment = await admin.get(live["hx-get"], htmx=True)
    body = soup(await fragment.text())
    assert body.find(id="live")["hx-trigger"] == "every 3s"
    assert body.find(id="live-summary")["hx-swap-oob"] == "innerHTML"
    # Completed: the poll reloads the page, which no longer polls.
    await services.pool.execute("UPDATE invitation_campaigns SET status = 'completed', "
                                "completed_at = now() WHERE id = $1", campaign)
    changed = await admin.get(live["hx-get"], htmx=True)
    assert changed.headers["HX-Refresh"] == "true"
    done = await admin.page(f"/admin/campaigns/{campaign}")
    assert not done.find(id="live").has_attr("hx-trigger")
    assert done.find("form", action=f"/admin/campaigns/{campaign}/pause") is None


async def test_pause_and_resume(admin: Admin, services: Services, salon: str) -> None:
    campaign, _ids = await seed_campaign(services, salon, 3)
    one = f"/admin/campaigns/{campaign}"
    paused = await admin.post(one + "/pause", {}, htmx=False)
    assert (paused.status, paused.headers["Location"]) == (303, one)
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", campaign) == "paused"
    page = await admin.page(one)
    assert page.find("form", action=one + "/resume") is not None
    resumed = await admin.post(one + "/resume", {"csrf": admin.csrf}, htmx=False, csrf=False)
    assert resumed.status == 303
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", campaign) == "sending"
    again = await admin.post(one + "/resume", {})
    assert again.status == 409
    assert "only a paused campaign can be resumed" in words(soup(await again.text()))


async def test_other_salons_and_unknown_campaigns_are_404_in_words(
        admin: Admin, services: Services) -> None:
    other = await add_salon(services.pool)
    foreign, _ids = await seed_campaign(services, other, 1)
    for path in (f"/admin/campaigns/{foreign}", f"/admin/campaigns/{foreign}/edit",
                 "/admin/campaigns/no-such-id", f"/admin/campaigns/{foreign}/live"):
        page = await admin.page(path, status=404)
        assert "There is no campaign at this address" in words(page.find(role="alert")), path
    refused = await admin.post(f"/admin/campaigns/{foreign}/pause", {})
    assert refused.status == 404
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", foreign) == "sending"


async def test_csrf_less_posts_are_refused(admin: Admin, services: Services,
                                           salon: str) -> None:
    campaign, _ids = await seed_campaign(services, salon, 1)
    for path, data in [(NEW, form(action="send")), (PANELS, form()),
                       (f"/admin/campaigns/{campaign}/pause", {})]:
        response = await admin.post(path, data, csrf=False)
        assert response.status == 403, path
    assert await services.pool.fetchval("SELECT count(*) FROM invitation_campaigns") == 1
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", campaign) == "sending"


async def test_empty_list_says_what_to_do_next(admin: Admin) -> None:
    page = await admin.page("/admin/campaigns")
    empty = " ".join(page.find(class_="empty").find("p").get_text().split())
    assert "No campaigns yet — import customers, create an offer, then build one" in empty
    assert page.find("a", href=NEW) is not None
