"""`onboardd` as a real process: start, readiness, systemd notify, SIGTERM, bad config, CLI."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import psutil
import pytest

from onboardd.auth import TokenCodec
from tests.conftest import JWT_SECRET, daemon_env
from tests.e2e.daemon import Daemon

ROOT = Path(__file__).resolve().parents[2]


def _run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
             ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "onboardd", *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_serve_with_external_db_notifies_systemd_and_stops_cleanly(db_url: str,
                                                                   tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(30)
    env = daemon_env(db_url, tmp_path / "state", NOTIFY_SOCKET=str(notify_path))
    daemon = Daemon(env, tmp_path)
    try:
        daemon.wait_ready()
        assert sock.recv(100) == b"READY=1"
        status, body = daemon.get("/api/salons/s1/customers/imported")
        assert status == 401 and b'"code":"unauthorized"' in body
        token = TokenCodec("HS256", JWT_SECRET, JWT_SECRET).encode("a", "admin", ["s2"], 60)
        status, body = daemon.get("/api/salons/s1/customers/imported",
                                  headers={"Authorization": f"Bearer {token}"})
        assert status == 403
        assert b'"code":"forbidden"' in body
        assert daemon.stop(signal.SIGTERM) == 0
        assert sock.recv(100) == b"STOPPING=1"
        assert '"event": "stopped"' in daemon.log()
        # Every actor returned by itself within its grace: none had to be cancelled (how long
        # the stop takes is measured by tests/bench/bench_startup.py).
        assert "actor_cancelled_after_grace" not in daemon.log()
        assert "Traceback" not in daemon.log()
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
        sock.close()


def _postgres_pids(pgdata: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(pgdata) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


@pytest.mark.slow
def test_embedded_defaults_become_ready_and_leave_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "var"
    daemon = Daemon({"ONBOARDD_PATHS_STATE_DIR": str(state)}, tmp_path)
    try:
        # The timeout is a bound; the time to ready is measured by tests/bench/bench_startup.py.
        daemon.wait_ready(timeout=60)
        assert _postgres_pids(state / "pg"), "embedded postgres should be running"
        salon, token = _banner(daemon, state)
        status, body = daemon.get(f"/api/salons/{salon}/welcome-offers",
                                  headers={"Authorization": f"Bearer {token}"})
        assert (status, body) == (200, b'{"offers":[]}')
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
    deadline = time.monotonic() + 10
    while _postgres_pids(state / "pg") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_pids(state / "pg") == []
    assert (state / "pii.key").exists()
    # Restart reuses the same data directory.
    again = Daemon({"ONBOARDD_PATHS_STATE_DIR": str(state)}, tmp_path)
    try:
        again.wait_ready(timeout=60)
        assert _banner(again, state)[0] == salon  # the same Demo Salon, not a second one
        assert again.stop() == 0
    finally:
        if again.proc.poll() is None:
            again.kill()


def _banner(daemon: Daemon, state: Path) -> tuple[str, str]:
    """The first-run banner of an embedded daemon: (salon id, admin token), checked."""
    deadline = time.monotonic() + 10
    while "Admin token" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = daemon.log().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("onboardd is serving"))
    assert lines[start + 1] == f"  API          {daemon.base_url}/api"
    salon = re.fullmatch(r"  Salon        Demo Salon \(id (\S+)\)", lines[start + 2])
    assert salon is not None, lines[start + 2]
    assert lines[start + 3] == "  Admin UI     open this link to sign in (valid 12 h):"
    link = lines[start + 4].strip()
    assert lines[start + 5] == "  Admin token  valid 12 h, for Demo Salon:"
    token = lines[start + 6].strip()
    # The link alone on its line is the admin UI's login with the same token; following it
    # signs in (a session cookie) and redirects to the dashboard, away from the token.
    assert link == f"{daemon.base_url}/admin/login?token={token}"
    status, headers = _no_redirect(link)
    assert (status, headers["Location"]) == (303, "/admin/dashboard")
    assert headers["Set-Cookie"].startswith(f"onboardd_admin={token};")
    secret = (state / "jwt.secret").read_text().strip()
    who = TokenCodec("HS256", secret, None).decode(token)
    assert (who.role, who.salons) == ("admin", (salon.group(1),))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert "onboardd demo" in "\n".join(lines[start:])
    return salon.group(1), token


def _no_redirect(url: str) -> tuple[int, http.client.HTTPMessage]:
    """A GET that does not follow a redirect: (status, headers)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=5)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        return response.status, response.headers
    finally:
        conn.close()


def test_bad_config_is_one_clear_line_and_nonzero(tmp_path: Path) -> None:
    result = _run_cli("serve", env={"ONBOARDD_HTTP_PORT": "-3"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["onboardd: configuration error: [http] port: must be between 1 and "
                     "65535, got -3"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[twilio]\nsms_rate_per_s = -5\n")
    result = _run_cli("--config", str(bad), "migrate", cwd=tmp_path)
    assert result.returncode == 2 and "[twilio] sms_rate_per_s" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    env = {"ONBOARDD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "ONBOARDD_DATABASE_START_RETRY_S": "1", "ONBOARDD_PII_KEY": "a" * 43 + "=",
           "ONBOARDD_AUTH_JWT_SECRET": JWT_SECRET}
    result = _run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "cannot reach the database at postgresql://nobody@127.0.0.1:1/none" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_version_and_help(tmp_path: Path) -> None:
    env = {"ONBOARDD_AUTH_JWT_SECRET": JWT_SECRET}
    result = _run_cli("token", "--user", "u1", "--role", "admin", "--salon", "s1", "--salon",
                      "s2", "--ttl", "15m", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    who = TokenCodec("HS256", JWT_SECRET, None).decode(result.stdout.strip())
    assert (who.sub, who.role, who.salons) == ("u1", "admin", ("s1", "s2"))
    result = _run_cli("token", "--user", "u1", "--role", "admin", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "--salon" in result.stderr
    result = _run_cli("version", cwd=tmp_path)
    assert result.stdout.startswith("onboardd ")
    result = _run_cli("--help", cwd=tmp_path)
    for command in ("serve", "migrate", "token", "version", "simulator"):
        assert command in result.stdout


@pytest.mark.parametrize(("args", "line"), [
    (("",), "onboardd salon add: name: must not be empty"),
    (("x" * 300,), "onboardd salon add: name: is 300 characters; at most 120 are allowed"),
    (("Glamour", "--timezone", "Asia/Kolkatta"),
     "onboardd salon add: timezone: unknown timezone 'Asia/Kolkatta': use an IANA name such as "
     "Asia/Kolkata or Europe/London"),
    (("Glamour", "--country", "ZZ"),
     "onboardd salon add: country: unknown country code 'ZZ': use a two-letter ISO 3166 code "
     "such as IN, AE or GB"),
    (("Glamour", "--app-link", "www.glamour.in"),
     "onboardd salon add: app-link: 'www.glamour.in' is not an http(s) URL: give the full link, "
     "such as https://app.example.com/download"),
])
def test_salon_add_refuses_bad_input_in_one_line(args: tuple[str, ...], line: str,
                                                 tmp_path: Path) -> None:
    # No database is configured or started: the input is refused before anything else.
    result = _run_cli("salon", "add", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [line]
    assert result.stdout == ""
    assert not (tmp_path / "var").exists()
