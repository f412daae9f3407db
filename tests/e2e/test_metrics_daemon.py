"""`onboardd serve` as a real process serves its own /metrics: every actor, behind the token."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import daemon_env
from tests.e2e.daemon import Daemon
from tests.metrics_support import Scrape

TOKEN = "daemon-scrape-" + "y" * 20


def test_daemon_metrics_show_every_actor_running(db_url: str, tmp_path: Path) -> None:
    daemon = Daemon(daemon_env(db_url, tmp_path / "state", ONBOARDD_METRICS_TOKEN=TOKEN),
                    tmp_path)
    try:
        daemon.wait_ready()
        status, body = daemon.get("/metrics")
        assert status == 401 and b'"code":"unauthorized"' in body
        status, body = daemon.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        found = Scrape(body.decode())
        up = found.by("onboardd_actor_up", "actor")
        assert {"dispatcher", "importer", "offer_matcher", "status_recorder",
                "scheduler"} <= set(up)
        assert set(up.values()) == {1.0}
        assert found.value("onboardd_actor_restarts_total", actor="dispatcher") == 0
        assert found.value("onboardd_db_pool_max") == 10
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
