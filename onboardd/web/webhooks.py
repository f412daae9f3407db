"""Twilio webhooks: signed status callbacks and inbound replies (STOP/START/HELP).

Both check ``X-Twilio-Signature`` with twilio's RequestValidator over the configured public URL
(``services.public_base_url`` + path and query), so they work behind a TLS-terminating proxy;
with ``[http] trust_forwarded`` the URL rebuilt from X-Forwarded-Proto/X-Forwarded-Host is
accepted too. A status callback is answered only once the recorder has committed it; a callback
for a SID not (yet) known is kept as an orphan and answered 200, so Twilio does not retry it.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from datetime import UTC, datetime

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from onboardd import twilio_account
from onboardd.db import delivery as db
from onboardd.keywords import classify_inbound
from onboardd.logging import get_logger
from onboardd.phones import mask_phone
from onboardd.services import Services
from onboardd.status_events import StatusCallback, StatusWork
from onboardd.web.errors import ApiError
from onboardd.web.keys import services as services_of

log = get_logger("webhooks")

routes = web.RouteTableDef()

# How long a status callback waits for the recorder before answering 503 (Twilio retries).
DURABLE_WAIT_S = 10.0
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twilio_auth_token(services: Services) -> str:
    """The token Twilio signs webhooks with (onboardd.twilio_account decides)."""
    return twilio_account.auth_token(services.cfg)


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def public_url(services: Services, request: web.Request) -> str:
    """The URL Twilio was told to call: the configured public base URL + path and query."""
    return services.public_base_url.rstrip("/") + request.path_qs


def candidate_urls(services: Services, request: web.Request) -> list[str]:
    """The URLs Twilio may have signed: the public one, and the forwarded one if trusted."""
    urls = [public_url(services, request)]
    if services.cfg.http.trust_forwarded:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto in ("http", "https") and host:
            urls.append(f"{proto}://{host}{request.path_qs}")
    return urls


def signature_valid(services: Services, request: web.Request, params: MultiDict[str],
                    signature: str) -> bool:
    """Whether Twilio signed these params for one of the candidate URLs.

    Twilio signs the exact URL it was configured with, so one HMAC over the public URL settles
    almost every request; only a mismatch pays for RequestValidator.validate over every
    candidate (with and without the default port, and the forwarded URL when trusted).
    """
    validator = _validator(twilio_auth_token(services))
    expected = validator.compute_signature(public_url(services, request), params)
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    return any(validator.validate(url, params, signature)
               for url in candidate_urls(services, request))


async def signed_form(request: web.Request) -> MultiDict[str]:
    """The form fields of a request carrying a valid Twilio signature, else 403."""
    svc = services_of(request)
    signature = request.headers.get("X-Twilio-Signature", "")
    form = await request.post()
    params: MultiDict[str] = MultiDict((k, v) for k, v in form.items() if isinstance(v, str))
    if not signature:
        log.warning("webhook_unsigned", path=request.path)
        raise ApiError(403, "missing X-Twilio-Signature header", code="bad_signature")
    if not signature_valid(svc, request, params, signature):
        log.warning("webhook_bad_signature", path=request.path)
        raise ApiError(403, "X-Twilio-Signature does not match this request (check the auth "
                       "token and [http] public_base_url)", code="bad_signature")
    return params


def _error_code(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


@routes.post("/api/webhooks/twilio/status")
async def status_callback(request: web.Request) -> web.StreamResponse:
    """Record one delivery status; answer after it is durable."""
    form = await signed_form(request)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if not sid or not status:
        raise ApiError(400, "MessageSid and MessageStatus are required form fields")
    event = StatusCallback(sid=sid, status=status.lower(), at=datetime.now(UTC),
                           error_code=_error_code(form.get("ErrorCode")),
                           error_message=form.get("ErrorMessage") or None)
    svc = services_of(request)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        async with asyncio.timeout(DURABLE_WAIT_S):
            await svc.queues.status.put(StatusWork(items=[event], done=done))
            await asyncio.shield(done)
    except TimeoutError:
        log.error("status_callback_not_recorded", sid=sid, reason="recorder busy or down")
        raise ApiError(503, "status not recorded yet; retry later",
                       headers={"Retry-After": "5"}) from None
    except Exception as exc:
        log.error("status_callback_not_recorded", sid=sid, error=repr(exc))
        raise ApiError(503, "status not recorded; retry later",
                       headers={"Retry-After": "5"}) from None
    return _twiml()


@routes.post("/api/webhooks/twilio/inbound")
async def inbound_message(request: web.Request) -> web.StreamResponse:
    """STOP words opt the number out for that sender, START opts it back in, HELP is noted."""
    form = await signed_form(request)
    sender = form.get("To") or ""
    phone = (form.get("From") or "").removeprefix("whatsapp:").strip()
    if not phone or not sender:
        raise ApiError(400, "From and To are required form fields")
    svc = services_of(request)
    kind = classify_inbound(form.get("Body") or "")
    phone_hash = svc.cipher.phone_hash(phone)
    first = await db.record_inbound(svc.pool, form.get("MessageSid") or None, phone_hash,
                                    sender, kind)
    if not first:
        # A redelivered webhook: acting again could undo a later START/STOP.
        return _twiml()
    if kind == "stop":
        result = await db.opt_out(svc.pool, phone_hash, sender, "inbound_stop")
        log.info("opted_out", phone=mask_phone(phone), sender=sender,
                 customers=result.customers, messages_skipped=result.messages_skipped)
    elif kind == "start":
        restored = await db.opt_in(svc.pool, phone_hash, sender)
        log.info("opted_in", phone=mask_phone(phone), sender=sender, customers=restored)
    else:
        log.info("inbound_message", phone=mask_phone(phone), sender=sender, kind=kind)
    return _twiml()
