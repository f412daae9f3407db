"""Simulator mode as real processes (issue 10): it is never chosen by accident with an external
database, a half-configured Twilio account names the missing key, and the standalone simulator
and the CLI agree on the state directory's random token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from onboardd.config import load
from onboardd.twilio import account as twilio_account
from onboardd.twilio.client import close_client, make_client, send_message
from tests.conftest import JWT_SECRET, PII_KEY
from tests.e2e.daemon import free_port
from tests.e2e.test_daemon import _run_cli

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def _external(**extra: str) -> dict[str, str]:
    """An external (unreachable) database and keys; nothing about Twilio unless given."""
    return {"ONBOARDD_DATABASE_URL": UNREACHABLE, "ONBOARDD_DATABASE_START_RETRY_S": "1",
            "ONBOARDD_PII_KEY": PII_KEY, "ONBOARDD_AUTH_JWT_SECRET": JWT_SECRET, **extra}


def test_external_database_without_twilio_needs_simulator_enabled(tmp_path: Path) -> None:
    result = _run_cli("serve", env=_external(), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("onboardd: configuration error: [twilio] account_sid/auth_token")
    assert "TWILIO_ACCOUNT_SID" in line and "[simulator] enabled = true" in line
    # Refused before any database is tried (that would be exit 3), and nothing was served.
    assert result.stdout == ""
    # With the simulator chosen explicitly, start-up goes on to the (unreachable) database.
    result = _run_cli("serve", env=_external(ONBOARDD_SIMULATOR_ENABLED="true"), cwd=tmp_path)
    assert result.returncode == 3, result.stderr


@pytest.mark.parametrize(("env", "missing"), [
    ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32}, "[twilio] auth_token: missing"),
    ({"TWILIO_AUTH_TOKEN": "secret"}, "[twilio] account_sid: missing"),
])
def test_half_configured_twilio_names_the_missing_key(tmp_path: Path, env: dict[str, str],
                                                      missing: str) -> None:
    for extra in (env, {**env, "ONBOARDD_SIMULATOR_ENABLED": "true"}):
        result = _run_cli("serve", env=_external(**extra), cwd=tmp_path)
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"onboardd: configuration error: {missing}"), line


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`onboardd simulator` on a free port with a state directory: (base URL, its env)."""
    port = free_port()
    env = {"ONBOARDD_PATHS_STATE_DIR": str(tmp_path / "state"),
           "ONBOARDD_SIMULATOR_PORT": str(port), "ONBOARDD_LOG_LEVEL": "warning"}
    full = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")} | env
    proc = subprocess.Popen([sys.executable, "-m", "onboardd", "simulator"], env=full,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with urllib.request.urlopen(url + "/_sim/stats", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.05)
        yield url, env
    finally:
        proc.terminate()
        proc.wait(10)


async def test_standalone_simulator_and_the_cli_share_the_state_dir_token(
        standalone: tuple[str, dict[str, str]]) -> None:
    url, env = standalone
    # What `onboardd reconcile` (and serve) use in simulator mode, from the same state dir.
    cfg = load(None, env)
    sid, token = twilio_account.credentials(cfg)
    assert token != "simulator-auth-token" and len(token) >= 32
    assert (Path(env["ONBOARDD_PATHS_STATE_DIR"]) / "simulator.token").read_text() == token
    for secret, accepted in ((token, True), ("simulator-auth-token", False)):
        client = make_client(sid, secret, url, 5.0)
        try:
            result = await send_message(client, from_="+15005550006", to="+15551230001",
                                        body="Hi", content_sid=None, content_variables=None,
                                        status_callback=None)
        finally:
            await close_client(client)
        assert result.accepted is accepted, result
    with urllib.request.urlopen(url + "/_sim/config", timeout=2) as resp:  # noqa: S310
        assert token.encode() not in resp.read()
