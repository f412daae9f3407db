"""Twilio webhooks: signed status callbacks and inbound replies (STOP/START/HELP).

Both check ``X-Twilio-Signature`` with twilio's RequestValidator over the configured public URL
(``services.public_base_url`` + path and query), so they work behind a TLS-terminating proxy;
with ``[http] trust_forwarded`` the URL rebuilt from X-Forwarded-Proto/X-Forwarded-Host is
accepted too. A status callback is answered only once the recorder has committed it; a callback
for a SID not (yet) known is kept as an orphan and answered 200, so Twilio does not retry it.

Order of checks: a missing signature header is 403 before the body is read; the raw body is read
(at most ``twilio_form.MAX_BODY_BYTES``, else 413) and decoded strictly as a URL-encoded UTF-8
form (anything else, multipart included, is 400); the signature is checked over those params
(403); only then are the fields checked (400 naming the field) and acted on. Every refusal is
the JSON error shape, logged as one line without a traceback; success is empty TwiML.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from onboardd.db.pool import unreachable
from onboardd.domain.status_events import StatusCallback, StatusWork
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services import delivery
from onboardd.twilio import account as twilio_account
from onboardd.web import twilio_form
from onboardd.web.contract import Form, Media, operation
from onboardd.web.errors import ApiError
from onboardd.web.keys import services as services_of

log = get_logger("webhooks")

routes = web.RouteTableDef()

# How long a status callback waits for the recorder before answering 503 (Twilio retries).
DURABLE_WAIT_S = 10.0
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_EMPTY_TWIML_BYTES = EMPTY_TWIML.encode()
_TWIML_HEADERS: Final = {"Content-Type": "text/xml; charset=utf-8"}


def twilio_auth_token(services: Services) -> str:
    """The token Twilio signs webhooks with (onboardd.twilio.account decides)."""
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


async def _raw_body(request: web.Request) -> bytes:
    """The request body, at most MAX_BODY_BYTES (413 beyond, 400 when it breaks off)."""
    limit = twilio_form.MAX_BODY_BYTES
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large()
    try:
        if length is not None:  # what Twilio sends: exactly that many bytes, in one read
            return await request.content.readexactly(length)
        body = bytearray()
        while chunk := await request.content.read(limit + 1 - len(body)):
            body += chunk
            if len(body) > limit:
                raise _too_large()
    except (HttpProcessingError, ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ApiError(400, f"body: could not be read ({type(exc).__name__})") from None
    return bytes(body)


def _too_large() -> ApiError:
    return ApiError(413, f"body: a Twilio webhook form is at most {twilio_form.MAX_BODY_BYTES} "
                    "bytes")


def _refused(request: web.Request, err: twilio_form.FormError) -> ApiError:
    """A malformed webhook: one log line (no traceback) and a 400 naming the field."""
    log.warning("webhook_malformed", path=request.path, field=err.field, reason=err.message)
    return ApiError(400, err.message, details={"field": err.field} if err.field else {})


async def signed_form(request: web.Request) -> MultiDict[str]:
    """The form fields of a request carrying a valid Twilio signature: 403 without one, 400 for
    a body that is not a URL-encoded UTF-8 form (the signature cannot be computed over it)."""
    svc = services_of(request)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        log.warning("webhook_unsigned", path=request.path)
        raise ApiError(403, "missing X-Twilio-Signature header", code="bad_signature")
    raw = await _raw_body(request)
    try:
        params = twilio_form.parse_form(raw, request.headers.get("Content-Type", ""))
    except twilio_form.FormError as err:
        raise _refused(request, err) from None
    if not signature_valid(svc, request, params, signature):
        log.warning("webhook_bad_signature", path=request.path)
        raise ApiError(403, "X-Twilio-Signature does not match this request (check the auth "
                       "token and [http] public_base_url)", code="bad_signature")
    return params


def _expire(done: asyncio.Future[None]) -> None:
    """The durable wait of a callback ran out: its webhook answers 503."""
    if not done.done():
        done.set_exception(TimeoutError())


async def _durable(queue: asyncio.Queue[StatusWork], event: StatusCallback) -> None:
    """Queue a callback for the status recorder and return once it is durable; TimeoutError
    after DURABLE_WAIT_S, or the recorder's error.

    The recorder settles the future only while it is pending: when the wait ran out, the
    event is still recorded, and Twilio's retry changes nothing. The deadline is one timer on
    the future (asyncio.timeout's cancel scope costs twice as much, on the path every callback
    of a storm takes); only a full queue, the recorder far behind, waits under a scope."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    expiry = loop.call_later(DURABLE_WAIT_S, _expire, done)
    try:
        work = StatusWork(items=[event], done=done)
        try:
            queue.put_nowait(work)
        except asyncio.QueueFull:
            async with asyncio.timeout_at(expiry.when()):
                await queue.put(work)
        await done
    finally:
        expiry.cancel()


TWIML: Final = Media("text/xml", "An empty TwiML <Response/> (nothing to send back)")


def _twiml() -> web.Response:
    return web.Response(body=_EMPTY_TWIML_BYTES, headers=_TWIML_HEADERS)


@routes.post(twilio_account.STATUS_CALLBACK_PATH)
@operation("Twilio's delivery status callback; answered once the status is durable",
           body=Form(twilio_form.StatusCallbackForm), answers={200: TWIML},
           refusals={413: "The form is larger than Twilio ever sends",
                     503: "Not recorded (database unreachable or the recorder busy); Twilio "
                          "retries"})
async def status_callback(request: web.Request) -> web.StreamResponse:
    """Record one delivery status; answer after it is durable."""
    form = await signed_form(request)
    try:
        fields = twilio_form.status_fields(form)
    except twilio_form.FormError as err:
        raise _refused(request, err) from None
    sid = fields.sid
    event = StatusCallback(sid=sid, status=fields.status, at=datetime.now(UTC),
                           error_code=fields.error_code, error_message=fields.error_message)
    svc = services_of(request)
    try:
        await _durable(svc.queues.status, event)
    except TimeoutError:
        log.error("status_callback_not_recorded", sid=sid, reason="recorder busy or down")
        raise ApiError(503, "status not recorded yet; retry later",
                       headers={"Retry-After": "5"}) from None
    except Exception as exc:
        # Twilio retries on the 503; an unreachable database is an outage, logged as such by
        # the actors, so each refused callback is only a warning then.
        level = log.warning if unreachable(exc) else log.error
        level("status_callback_not_recorded", sid=sid, error=repr(exc))
        raise ApiError(503, "status not recorded; retry later",
                       headers={"Retry-After": "5"}) from None
    return _twiml()


@routes.post("/api/webhooks/twilio/inbound")
@operation("Twilio's inbound message: STOP opts the number out for that sender, START back in",
           body=Form(twilio_form.InboundForm), answers={200: TWIML},
           refusals={413: "The form is larger than Twilio ever sends"})
async def inbound_message(request: web.Request) -> web.StreamResponse:
    """STOP words opt the number out for that sender, START opts it back in, HELP is noted."""
    form = await signed_form(request)
    try:
        fields = twilio_form.inbound_fields(form)
    except twilio_form.FormError as err:
        raise _refused(request, err) from None
    await delivery.inbound(services_of(request), fields.sid, fields.phone, fields.sender,
                           fields.text)
    return _twiml()
