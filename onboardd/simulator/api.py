"""The simulated Twilio endpoints: create, list and fetch Messages."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping

import msgspec
from aiohttp import web

from onboardd.simulator.errors import MAGIC_TO, error_response
from onboardd.simulator.listing import list_page
from onboardd.simulator.profile import (
    HTTP_ERRORS,
    IMMEDIATE_CODES,
    WHATSAPP_CODES,
    choose_behaviour,
    plan_callbacks,
    plan_timeline,
)
from onboardd.simulator.resource import render
from onboardd.simulator.segments import num_segments
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.state import STATE_KEY, SimState
from onboardd.simulator.store import MessageRecord

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_WHATSAPP = "whatsapp:"


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(payload), content_type="application/json"
    )


def _reject(state: SimState, code: int, *, retry_after: int | None = None) -> web.Response:
    state.stats.reject(code)
    return error_response(code, retry_after=retry_after)


def _field(form: Mapping[str, object], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def split_channel(address: str) -> tuple[str, str]:
    """('whatsapp' | 'sms', the bare number) of a To/From address."""
    if address.startswith(_WHATSAPP):
        return "whatsapp", address[len(_WHATSAPP) :]
    return "sms", address


async def _authorised(request: web.Request, state: SimState) -> bool:
    """Apply the base latency, then check basic auth and the account in the path."""
    settings = state.settings
    if settings.latency_ms or settings.latency_jitter_ms:
        jitter = state.rng.random() * settings.latency_jitter_ms
        await state.pause((settings.latency_ms + jitter) / 1000)
    return (
        state.auth_ok(request.headers.get("Authorization"))
        and request.match_info["account_sid"] == settings.account_sid
    )


def _validate(settings: SimulatorSettings, form: Mapping[str, object]) -> int | None:
    """Twilio's checks on the create parameters; the error code of the first failure."""
    to, from_ = _field(form, "To"), _field(form, "From")
    if to is None:
        return 21604
    if _field(form, "Body") is None and _field(form, "ContentSid") is None:
        return 21602
    if from_ is None:
        if _field(form, "MessagingServiceSid") is None:
            return 21603
    else:
        allowed = settings.allowed_from
        if allowed and from_ not in allowed and split_channel(from_)[1] not in allowed:
            return 21606
        if split_channel(from_)[0] != split_channel(to)[0]:
            return 21910
    number = split_channel(to)[1]
    if not _E164.fullmatch(number):
        return 21211
    return MAGIC_TO.get(number)


async def create_message(request: web.Request) -> web.StreamResponse:
    """POST .../Messages.json: validate, apply the behaviour profile, accept."""
    state = request.app[STATE_KEY]
    now = time.time()
    state.stats.requests += 1
    state.stats.request_window.hit(now)
    if not await _authorised(request, state):
        return _reject(state, 20003)
    if not state.bucket.try_take():
        return _reject(state, 20429, retry_after=1)
    form = await request.post()
    settings = state.settings
    code = _validate(settings, form)
    if code is not None:
        return _reject(state, code)
    to = _field(form, "To") or ""
    channel, number = split_channel(to)
    behaviour = choose_behaviour(settings, state.rng, number, channel)
    if behaviour in HTTP_ERRORS:
        return _reject(state, HTTP_ERRORS[behaviour], retry_after=1 if behaviour == "429" else None)
    if behaviour in IMMEDIATE_CODES:
        return _reject(state, IMMEDIATE_CODES[behaviour])
    if behaviour in WHATSAPP_CODES and settings.whatsapp_error_mode == "immediate":
        return _reject(state, WHATSAPP_CODES[behaviour])
    if behaviour == "timeout":
        return await _hang(state, form, channel, now)
    if behaviour == "slow" and await state.pause(settings.slow_ms / 1000):
        return _reject(state, 20503)
    record = _accept(state, form, channel, behaviour, now)
    return _json(render(record, record.created_at, as_created=True), status=201)


async def _hang(state: SimState, form: Mapping[str, object], channel: str,
                arrived_at: float) -> web.Response:
    """Answer only after ``hang_s`` (clients give up first); maybe create the message first."""
    record = None
    if state.settings.timeout_accepts:
        record = _accept(state, form, channel, None, arrived_at)
    if await state.pause(state.settings.hang_s) or record is None:
        return _reject(state, 20503)
    return _json(render(record, record.created_at, as_created=True), status=201)


def _accept(
    state: SimState, form: Mapping[str, object], channel: str, behaviour: str | None,
    arrived_at: float,
) -> MessageRecord:
    """Store the message, plan its statuses and schedule its callbacks."""
    settings, now = state.settings, time.time()
    body = _field(form, "Body") or ""
    callback = _field(form, "StatusCallback")
    record = MessageRecord(
        sid="SM" + uuid.uuid4().hex,
        account_sid=settings.account_sid,
        to=_field(form, "To") or "",
        from_=_field(form, "From") or "",
        body=body,
        content_sid=_field(form, "ContentSid"),
        content_variables=_field(form, "ContentVariables"),
        status_callback=callback,
        messaging_service_sid=_field(form, "MessagingServiceSid"),
        channel=channel,
        num_segments=num_segments(body),
        created_at=now,
        arrived_at=arrived_at,
    )
    record.timeline = plan_timeline(settings, behaviour, channel, now)
    state.store.add(record)
    state.stats.accepted += 1
    state.stats.accepted_window.hit(now)
    if callback is not None and settings.callbacks_enabled:
        state.dispatcher.schedule(record, plan_callbacks(settings, state.rng, record.timeline))
    return record


async def list_messages(request: web.Request) -> web.StreamResponse:
    """GET .../Messages.json: Twilio's paged list, newest first."""
    state = request.app[STATE_KEY]
    if not await _authorised(request, state):
        return _reject(state, 20003)
    page = list_page(state.store, request.path, request.query, time.time())
    if page is None:
        return _reject(state, 20001)
    return _json(page)


async def fetch_message(request: web.Request) -> web.StreamResponse:
    """GET .../Messages/{sid}.json."""
    state = request.app[STATE_KEY]
    if not await _authorised(request, state):
        return _reject(state, 20003)
    record = state.store.get(request.match_info["sid"])
    if record is None:
        return _reject(state, 20404)
    return _json(render(record, time.time()))
