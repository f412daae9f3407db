"""Hostile HTTP against a real `onboardd serve`, over raw sockets: oversized or malformed
request heads get the JSON error shape and leave no request bytes in the log; slow heads and
slow bodies are cut off while other clients are served."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import msgspec

from onboardd.runtime import Services
from tests.conftest import daemon_env
from tests.e2e.daemon import Daemon

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


async def _start(db_url: str, tmp_path: Path, **env: str) -> Daemon:
    daemon = Daemon(daemon_env(db_url, tmp_path / "state", **env), tmp_path)
    await asyncio.to_thread(daemon.wait_ready)
    return daemon


async def _stop(daemon: Daemon) -> str:
    """Stop the daemon (exit 0) and return everything it logged."""
    code = await asyncio.to_thread(daemon.stop)
    assert code == 0, daemon.log()
    return daemon.log()


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


async def _exchange(daemon: Daemon, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes (each of these answers closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    return _parse(raw)


def _json_error(status: int, headers: dict[str, str], body: bytes, expected: int, code: str
                ) -> dict[str, Any]:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json"), headers
    data = msgspec.json.decode(body)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "details"}
    assert data["error"]["code"] == code, data
    assert headers["x-request-id"], headers
    error: dict[str, Any] = data["error"]
    return error


async def test_oversized_heads_get_the_json_error_and_no_byte_reaches_the_log(
        db_url: str, tmp_path: Path, salon: str) -> None:
    daemon = await _start(db_url, tmp_path)
    secrets_sent = {name: "eyJ" + secrets.token_urlsafe(12_000) for name in
                    ("bearer", "cookie", "url", "many")}
    path = f"/api/salons/{salon}/welcome-offers"
    try:
        # A 16 KB bearer token, a 16 KB cookie, a 16 KB URL: 431 in the JSON shape.
        for request in (
                f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {secrets_sent['bearer']}\r\n\r\n",
                f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: s={secrets_sent['cookie']}\r\n\r\n",
                f"GET {path}?q={secrets_sent['url']} HTTP/1.1\r\nHost: x\r\n\r\n"):
            error = _json_error(*await _exchange(daemon, request.encode()), 431,
                                "headers_too_large")
            assert error["details"] == {"limitBytes": 8190}
        many = "".join(f"X-H{i}: {secrets_sent['many'][:40]}\r\n" for i in range(200))
        _json_error(*await _exchange(daemon, f"GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()),
                    431, "headers_too_large")
        # Not HTTP at all, and a header with a NUL: 400 in the JSON shape.
        _json_error(*await _exchange(daemon, b"\x16\x03\x01garbage\r\n\r\n"), 400, "bad_request")
        _json_error(*await _exchange(daemon, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
                    400, "bad_request")
        # The daemon still serves.
        assert daemon.get("/healthz")[0] == 200
    finally:
        log = await _stop(daemon)
    for name, secret in secrets_sent.items():
        assert secret[:12] not in log, f"bytes of the {name} reached the log"
    # One line per refusal (the TLS-looking probe is noise, logged at debug only).
    assert log.count('"event": "http_request_unparseable"') == 5
    assert "Traceback" not in log and "Got more than" not in log


async def _dribble_head(daemon: Daemon, every_s: float) -> float:
    """Send a request head one byte at a time, never finishing it; seconds until the server
    closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    started = time.monotonic()
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while time.monotonic() - started < 30:
            try:
                writer.write(b"a")
                await writer.drain()
                if await asyncio.wait_for(reader.read(100), timeout=every_s) == b"":
                    break
            except TimeoutError:
                continue
            except ConnectionError:
                break
        return time.monotonic() - started
    finally:
        writer.close()


async def test_slow_heads_are_dropped_while_other_clients_are_served(
        db_url: str, tmp_path: Path) -> None:
    daemon = await _start(db_url, tmp_path, ONBOARDD_HTTP_HEADER_TIMEOUT_S="2")
    try:
        slow = [asyncio.create_task(_dribble_head(daemon, 1.0)) for _ in range(50)]
        await asyncio.sleep(1.2)
        # While fifty connections dribble, another client is served at once.
        assert await asyncio.to_thread(daemon.get, "/readyz") == (200, b'{"status":"ready"}')
        assert not any(task.done() for task in slow)
        held = await asyncio.gather(*slow)
        # Each was dropped at the header deadline (2 s), not held for the 30 s the client tried.
        assert max(held) < 10, held
        assert min(held) >= 1.5, held
    finally:
        await _stop(daemon)


async def _slow_body(daemon: Daemon, head: bytes, pieces: list[bytes], every_s: float
                     ) -> tuple[float, bytes]:
    """Send a head, then the body piece by piece with a pause before each; (seconds until the
    server answered and closed, what it answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    started = time.monotonic()
    answer = b""
    try:
        writer.write(head)
        await writer.drain()
        for piece in pieces:
            try:
                answer = await asyncio.wait_for(reader.read(), timeout=every_s)
                break  # the server answered and closed
            except TimeoutError:
                pass
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break
        else:
            answer = await asyncio.wait_for(reader.read(), timeout=30)
        return time.monotonic() - started, answer
    finally:
        writer.close()


async def test_slow_bodies_are_cut_off_with_408_and_nothing_is_written(
        db_url: str, tmp_path: Path, services: Services, salon: str,
        admin_headers: dict[str, str]) -> None:
    daemon = await _start(db_url, tmp_path, ONBOARDD_HTTP_BODY_IDLE_TIMEOUT_S="1",
                          ONBOARDD_HTTP_BODY_TIMEOUT_S="3")
    body = msgspec.json.encode({"name": "Welcome", "discountType": "fixed",
                                "discountValue": 10000})
    head = (f"POST /api/salons/{salon}/welcome-offers HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {admin_headers['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    try:
        # A body that stops after its first bytes: cut at the idle deadline (1 s).
        stalled = asyncio.create_task(_slow_body(daemon, head + body[:5], [body[5:]], 20))
        # A body dribbled a byte every 0.4 s (never idle for 1 s): cut at the total one (3 s).
        dribbled = asyncio.create_task(_slow_body(
            daemon, head, [body[i:i + 1] for i in range(len(body))], 0.4))
        await asyncio.sleep(0.5)
        assert await asyncio.to_thread(daemon.get, "/healthz") == (200, b'{"status":"ok"}')
        for task, reason in ((stalled, "no byte of the request body arrived for 1 s"),
                             (dribbled, "the request body did not arrive within 3 s")):
            seconds, answer = await task
            status, headers, raw = _parse(answer)
            error = _json_error(status, headers, raw, 408, "request_timeout")
            assert error["message"].startswith(reason), error
            assert headers["connection"] == "close"
            assert seconds < 10, seconds
        # A client that sends its body promptly is served.
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        writer.write(head.replace(b"HTTP/1.1", b"HTTP/1.0", 1) + body)
        assert _parse(await asyncio.wait_for(reader.read(), timeout=10))[0] == 201
        writer.close()
    finally:
        await _stop(daemon)
    assert await services.pool.fetchval("SELECT count(*) FROM welcome_offers") == 1
