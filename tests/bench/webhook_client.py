"""The webhook benchmark's clients: Twilio-signed status callbacks posted over HTTP, by a raw
HTTP/1.1 client (the default: the lightest) or by aiohttp's (tests/bench/bench_webhooks.py)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

PATH = "/api/webhooks/twilio/status"


def signed_requests(public: str, token: str, events: list[tuple[str, str]]
                    ) -> list[tuple[bytes, dict[str, str]]]:
    """Each event's body and headers, signed as Twilio signs them."""
    validator = RequestValidator(token)
    requests: list[tuple[bytes, dict[str, str]]] = []
    for sid, status in events:
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                "AccountSid": "AC" + "b" * 32, "From": "+15005550006", "To": "+919700000000",
                "ApiVersion": "2010-04-01"}
        if status in ("failed", "undelivered"):
            form["ErrorCode"] = "30003"
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(public + PATH, form)}
        requests.append((urlencode(form).encode(), headers))
    return requests


def raw_request(host: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 POST of body to PATH, whole, kept alive."""
    head = [f"POST {PATH} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _raw_worker(host: str, port: int, queue: asyncio.Queue[bytes],
                      latencies: list[float]) -> int:
    """Post what is queued over one kept-alive connection; returns the answers not 200."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while True:
            try:
                request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return errors
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()


async def post_all(base: str, public: str, token: str, events: list[tuple[str, str]],
                   concurrency: int, client: str) -> tuple[float, list[float], int]:
    """Post every event with `concurrency` clients; returns (seconds, latencies ms, errors).

    Bodies, signatures and (for the raw client) whole requests are made up front, so the
    client, which shares the server's cores (Twilio's does not), spends its CPU on HTTP only:
    the raw client writes each request's bytes and reads the answer over a kept-alive
    connection (a few tens of microseconds a request); the aiohttp client costs several times
    that."""
    requests = signed_requests(public, token, events)
    latencies: list[float] = []
    if client == "raw":
        url = URL(base)
        assert url.host is not None and url.port is not None
        raw: asyncio.Queue[bytes] = asyncio.Queue()
        for body, headers in requests:
            raw.put_nowait(raw_request(f"{url.host}:{url.port}", body, headers))
        started = time.perf_counter()
        errors = sum(await asyncio.gather(*(_raw_worker(url.host, url.port, raw, latencies)
                                            for _ in range(concurrency))))
        return time.perf_counter() - started, latencies, errors
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    failed = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal failed
        while True:
            try:
                body, headers = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            async with http.post(base + PATH, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    failed += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return seconds, latencies, failed


def post_all_sync(base: str, public: str, token: str, events: list[tuple[str, str]],
                   concurrency: int, client: str) -> tuple[float, list[float], int]:
    return asyncio.run(post_all(base, public, token, events, concurrency, client))
