"""The /_sim endpoints: inspect, reset and reconfigure the simulator over HTTP (no auth)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.state import STATE_KEY
from onboardd.simulator.store import MessageRecord


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(payload), content_type="application/json"
    )


def describe(record: MessageRecord, now: float) -> dict[str, Any]:
    """Everything the simulator knows about one message, JSON-ready."""
    state = record.state_at(now)
    return {
        "sid": record.sid,
        "to": record.to,
        "from": record.from_,
        "channel": record.channel,
        "body": record.body,
        "content_sid": record.content_sid,
        "content_variables": record.content_variables,
        "status_callback": record.status_callback,
        "messaging_service_sid": record.messaging_service_sid,
        "num_segments": record.num_segments,
        "status": state.status,
        "error_code": state.error_code,
        "date_created": _iso(record.created_at),
        # Epoch seconds when the request reached the simulator (before its latency).
        "arrived_at": record.arrived_at,
        "date_sent": _iso(state.date_sent),
        "timeline": [
            {"at": _iso(step.at), "status": step.status, "error_code": step.error_code}
            for step in record.timeline
        ],
        "callbacks_posted": list(record.callbacks_posted),
    }


async def sim_messages(request: web.Request) -> web.StreamResponse:
    """GET /_sim/messages?to=&channel=: every accepted message, oldest first."""
    state, now = request.app[STATE_KEY], time.time()
    to, channel = request.query.get("to"), request.query.get("channel")
    rows = [
        describe(record, now)
        for record in state.store.all()
        if (to is None or to in (record.to, record.to.removeprefix("whatsapp:")))
        and (channel is None or record.channel == channel)
    ]
    return _json(rows)


async def sim_stats(request: web.Request) -> web.StreamResponse:
    """GET /_sim/stats: counters, busiest second, pending callbacks."""
    state = request.app[STATE_KEY]
    stats = state.stats.as_json()
    stats["stored"] = len(state.store)
    stats["pending_callbacks"] = state.dispatcher.pending
    return _json(stats)


async def sim_reset(request: web.Request) -> web.StreamResponse:
    """POST /_sim/reset: forget messages, counters, pending callbacks; restore settings."""
    request.app[STATE_KEY].reset()
    return _json({"reset": True})


def shown(settings: SimulatorSettings) -> dict[str, Any]:
    """The settings as /_sim/config shows them: the auth token stays secret."""
    data = msgspec.structs.asdict(settings)
    data["auth_token"] = "(hidden)"  # noqa: S105 - a placeholder, not a secret
    return data


async def sim_get_config(request: web.Request) -> web.StreamResponse:
    """GET /_sim/config: the settings in force (without the auth token)."""
    return _json(shown(request.app[STATE_KEY].settings))


async def sim_patch_config(request: web.Request) -> web.StreamResponse:
    """POST /_sim/config: JSON merge patch of the settings (per_number merges; null removes;
    the account SID and auth token cannot be changed)."""
    try:
        changes = msgspec.json.decode(await request.read())
        if not isinstance(changes, dict):
            raise TypeError("expected a JSON object")
        settings = request.app[STATE_KEY].patch(changes)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(shown(settings))
