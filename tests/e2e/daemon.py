"""Run `onboardd serve` as a real subprocess for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Daemon:
    """A serving onboardd process with its environment; stop() returns its exit code."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str,
                 command: Sequence[str] = (sys.executable, "-m", "onboardd"),
                 port: int | None = None) -> None:
        self.port = port or free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
        full_env.update({"ONBOARDD_HTTP_PORT": str(self.port), "ONBOARDD_LOG_FORMAT": "json"})
        full_env.update(env)
        self.log_path = cwd / f"daemon-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*command, *args, "serve"], env=full_env, cwd=cwd,
            stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 2.0, headers: dict[str, str] | None = None
            ) -> tuple[int, bytes]:
        """A GET to the daemon (status, body); (0, b"") when it does not answer."""
        request = urllib.request.Request(self.base_url + path, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds until /readyz answered 200; raises with the log when it never does."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            if self.get("/readyz")[0] == 200:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the daemon and wait for its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """kill -9."""
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        """What the daemon printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")
