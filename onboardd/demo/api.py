"""The running daemon's REST API, as the demo uses it (aiohttp client).

Every failure becomes a DemoFailure with one line for the user: the daemon not answering
(exit 3), a token it refuses (exit 2, naming the fix), any other refusal (exit 1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import aiohttp
import msgspec

T = TypeVar("T")

PAGE: Final = 100
MESSAGES_PAGE: Final = 500
POLL_S: Final = 0.25
# Another campaign of the salon may still be sending (one at a time per salon).
SEND_CONFLICT_WAIT_S: Final = 60.0


class DemoFailure(Exception):
    """A step of the demo failed; the message is one line for the user."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _error_text(body: Any) -> tuple[str, str]:
    """(code, message) of the daemon's error shape, or a short rendering of anything else."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("code", "")), str(error.get("message", ""))
    return "", str(body)[:200]


class DaemonApi:
    """Admin calls for one salon, and customer calls with their own tokens."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str,
                 salon_id: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.salon_id = salon_id

    def _unreachable(self) -> DemoFailure:
        return DemoFailure(f"no daemon answers at {self.base_url} (start it with onboardd "
                           "serve, or pass --url)", 3)

    def _refused(self, what: str, status: int, body: Any) -> DemoFailure:
        code, message = _error_text(body)
        salon = self.salon_id
        if status == 401:
            return DemoFailure(
                f"the daemon refused the token ({message or code}): drop --token to mint one "
                "with the configured key, or mint one with onboardd token --user admin-1 "
                f"--role admin --salon {salon} (with the daemon's configuration)", 2)
        if status == 403:
            return DemoFailure(
                f"the token may not manage salon {salon} (403): pass a token whose salons claim "
                f"lists it, e.g. onboardd token --user admin-1 --role admin --salon {salon}", 2)
        return DemoFailure(f"{what}: HTTP {status} {code}: {message}".rstrip(": "))

    async def call(self, method: str, path: str, what: str, *, json: Any = None,
                   data: aiohttp.FormData | None = None, token: str | None = None,
                   accept: tuple[int, ...] = (200, 201, 202)) -> tuple[int, Any]:
        """(status, decoded JSON body); refusals outside `accept` raise DemoFailure."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        try:
            async with self.http.request(method, self.base_url + path, json=json, data=data,
                                         headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientConnectionError, TimeoutError):
            raise self._unreachable() from None
        try:
            body = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            body = raw.decode(errors="replace")
        if status not in accept:
            raise self._refused(what, status, body)
        return status, body

    async def ready(self) -> None:
        """Wait up to 30 s for /readyz; DemoFailure (exit 3) when nobody answers."""
        deadline = time.monotonic() + 30.0
        while True:
            try:
                async with self.http.get(self.base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return
                    body = await resp.read()
            except (aiohttp.ClientConnectionError, TimeoutError):
                raise self._unreachable() from None
            if time.monotonic() > deadline:
                raise DemoFailure(f"the daemon at {self.base_url} is not ready: "
                                  f"{body.decode(errors='replace')[:200]}", 3)
            await asyncio.sleep(0.5)

    def salon_path(self, tail: str) -> str:
        """/api/salons/{salon}/tail"""
        return f"/api/salons/{self.salon_id}/{tail}"

    async def customer_total(self) -> int:
        """How many customers the salon has imported."""
        _, body = await self.call("GET", self.salon_path("customers/imported?limit=1"),
                                  "listing imported customers")
        return int(body["total"])

    async def customers(self) -> list[dict[str, Any]]:
        """Every imported customer of the salon (decrypted: the admin UI's list)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            _, body = await self.call(
                "GET", self.salon_path(f"customers/imported?limit={PAGE}&page={page}"),
                "listing imported customers")
            out += body["customers"]
            if page >= body["totalPages"]:
                return out
            page += 1

    async def import_file(self, file_name: str, data: bytes) -> dict[str, Any]:
        """Upload, confirm and wait until the importer has finished; the final status."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename=file_name, content_type="text/csv")
        _, preview = await self.call("POST", self.salon_path("customers/import"),
                                     "uploading the customer file", data=form)
        batch = preview["batchId"]
        await self.call("POST", self.salon_path(f"customers/import/{batch}/confirm"),
                        "confirming the import")

        async def finished() -> dict[str, Any] | None:
            _, status = await self.call(
                "GET", self.salon_path(f"customers/import/{batch}/status"), "import status")
            return status if status["status"] in ("completed", "failed") else None

        result = await poll(finished, 120.0, "the import")
        if result["status"] != "completed":
            raise DemoFailure(f"the import failed: {result.get('failureReason')}")
        return result

    async def open_sending_window(self) -> bool:
        """Quiet hours would hold the demo's campaigns (it waits for them to complete): when the
        salon's sending window is shut now, open it all day. True when it was changed."""
        _, settings = await self.call("GET", self.salon_path("settings"),
                                      "reading the salon's sending window")
        if settings["sendingNow"]:
            return False
        await self.call("PATCH", self.salon_path("settings"), "opening the sending window",
                        json={"sendingWindow": {"start": "00:00", "end": "24:00"}})
        return True

    async def create_offer(self, offer: dict[str, Any]) -> dict[str, Any]:
        """POST a welcome offer; the created offer."""
        _, body = await self.call("POST", self.salon_path("welcome-offers"),
                                  "creating the welcome offer", json=offer)
        return dict(body)

    async def run_campaign(self, campaign: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Create, send and wait for completion; the completed campaign's stats."""
        base = "invitation-campaigns"
        _, created = await self.call("POST", self.salon_path(base), "creating a campaign",
                                     json=campaign)
        cid = created["id"]

        async def sent() -> bool | None:
            status, _ = await self.call("POST", self.salon_path(f"{base}/{cid}/send"),
                                        "sending a campaign", json={},
                                        accept=(200, 202, 409))
            return True if status != 409 else None

        await poll(sent, SEND_CONFLICT_WAIT_S, "another campaign of this salon to finish")
        return await poll(lambda: self._completed(cid), timeout_s, f"campaign {cid}")

    async def _completed(self, campaign_id: str) -> dict[str, Any] | None:
        stats = await self.stats(campaign_id)
        return stats if stats["status"] == "completed" else None

    async def stats(self, campaign_id: str) -> dict[str, Any]:
        """GET a campaign's delivery statistics."""
        _, body = await self.call(
            "GET", self.salon_path(f"invitation-campaigns/{campaign_id}/stats"),
            "reading campaign statistics")
        return dict(body)

    async def messages(self, campaign_id: str) -> list[dict[str, Any]]:
        """Every message of a campaign (masked phones)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            _, body = await self.call(
                "GET", self.salon_path(f"invitation-campaigns/{campaign_id}/messages"
                                       f"?pageSize={MESSAGES_PAGE}&page={page}"),
                "listing campaign messages")
            out += body["items"]
            if len(out) >= body["total"] or not body["items"]:
                return out
            page += 1

    async def redeem(self, customer_token: str, offer_id: str, booking_id: str,
                     amount_in_paisa: int) -> dict[str, Any]:
        """Apply the welcome offer to a booking, as the mobile app does at checkout."""
        _, body = await self.call(
            "POST", "/api/mobile/welcome-offers/redeem", "redeeming the welcome offer",
            json={"offerId": offer_id, "bookingId": booking_id,
                  "bookingAmountInPaisa": amount_in_paisa},
            token=customer_token)
        return dict(body)


async def poll(check: Callable[[], Awaitable[T | None]], timeout_s: float, what: str) -> T:
    """Call check until it returns a value; DemoFailure after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise DemoFailure(f"gave up waiting for {what} after {timeout_s:g} s")
        await asyncio.sleep(POLL_S)
