"""A campaign start that PostgreSQL aborts for a deadlock is run again, not answered 500.


Seen in the chaos benchmark: the start assigns offer codes to thousands of customer rows while
the offer matcher and an import write some of the same rows; a deadlock used to come back as a
500 with a traceback and the campaign did not start.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, phone
from tests.conftest import decode
from tests.web.test_campaigns_api import base, create

WAITING_FOR_A_LOCK = """
    SELECT count(*) FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND datname = current_database()
      AND query LIKE '%UPDATE imported_customers c%'"""


async def test_a_start_that_deadlocks_is_retried_and_starts_once(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher, salon: str,
        admin_headers: dict[str, str]) -> None:
    pool = services.pool
    customers = await add_customers(pool, cipher, salon, [phone(i) for i in range(20)])
    made = await create(client, salon, admin_headers, welcomeOfferId=await add_offer(pool, salon))
    async with pool.acquire() as other:
        # Another writer holds one customer row, and asks for the campaign row once the start
        # waits on that customer: each waits for the other. The other writer's own deadlock
        # check comes much later, so PostgreSQL aborts the start.
        tx = other.transaction()
        await tx.start()
        await other.execute("SET LOCAL deadlock_timeout = '20s'")
        await other.execute("UPDATE imported_customers SET updated_at = now() WHERE id = $1",
                            customers[7])
        send = asyncio.create_task(
            client.post(f"{base(salon)}/{made['id']}/send", headers=admin_headers))
        async with asyncio.timeout(10):
            while not await pool.fetchval(WAITING_FOR_A_LOCK):
                await asyncio.sleep(0.02)
        await other.execute(
            "UPDATE invitation_campaigns SET updated_at = now() WHERE id = $1", made["id"])
        await tx.rollback()
        resp = await send
    assert resp.status == 202, await resp.text()
    assert decode(await resp.read())["status"] == "sending"
    rows = await pool.fetch(
        """SELECT m.imported_customer_id, c.offer_code FROM invitation_messages m
           JOIN imported_customers c ON c.id = m.imported_customer_id
           WHERE m.campaign_id = $1""", made["id"])
    assert sorted(r["imported_customer_id"] for r in rows) == sorted(customers)
    assert all(r["offer_code"] for r in rows)
