"""systemd's notify protocol (READY=1, STOPPING=1), a no-op when NOTIFY_SOCKET is unset."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send one state line to systemd; True when a socket was there to send to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True
