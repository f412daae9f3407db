"""The one way onboardd talks to Twilio: twilio-python's async client, made safe to time out.

twilio 9.x's ``AsyncTwilioHttpClient`` opens its aiohttp session in its constructor (so
``make_client`` must run inside the event loop) and ignores the timeout given to that
constructor, leaving requests to aiohttp's 5-minute default. ``_OnboarddHttpClient`` replaces
its ``request``: no retries (a retried POST can send twice), a hard per-request deadline, URL
rewriting to ``api_base_url`` (the simulator), and failures split by whether any byte of the
request left this process:

* ``TwilioUnreachable``: the request never left (connect failed or timed out before the
  request headers were written). Resending cannot duplicate a message.
* ``TwilioTimeout``: the request may have reached Twilio (deadline hit or connection lost after
  the headers were written). Reconcile with ``list_messages`` before resending.

Twilio's exceptions carry no response headers, so the HTTP status and ``Retry-After`` of the
last response are captured through a context variable set by ``send_message``.

``send_message(on_wire=...)`` is awaited at the last moment before the request's bytes are
handed to the socket (aiohttp's ``on_request_chunk_sent`` trace signal, which runs right before
the first body write, headers and body going out together); the sender's one-second cap stamps
its writes there. When it raises ``SendWithdrawn``, nothing of the request has left.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import aiohttp
import msgspec
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"

# Filled by the HTTP client with the last response's status and Retry-After, per task.
_RESPONSE_META: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "onboardd_twilio_response_meta", default=None
)


class TwilioTransportError(Exception):
    """No HTTP response came back from Twilio."""


class TwilioUnreachable(TwilioTransportError):
    """The request never left this process: resending cannot duplicate it."""


class TwilioTimeout(TwilioTransportError):
    """The request may have reached Twilio: reconcile before resending."""


class SendWithdrawn(Exception):
    """The ``on_wire`` hook withdrew the request before any byte of it left this process."""


# Awaited right before a create request's bytes go out (see send_message's on_wire).
OnWire = Callable[[], Awaitable[None]]
_ON_WIRE: contextvars.ContextVar[OnWire | None] = contextvars.ContextVar(
    "onboardd_twilio_on_wire", default=None
)


class TwilioListError(Exception):
    """Twilio answered a list request with an error."""

    def __init__(self, http_status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {http_status} code {code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message


class SendResult(msgspec.Struct, frozen=True):
    """Twilio's answer to one create-message request (accepted or refused)."""

    sid: str | None
    status: str | None
    num_segments: int
    error_code: int | None
    error_message: str | None
    http_status: int
    retry_after_s: float | None = None

    @property
    def accepted(self) -> bool:
        """True when Twilio created the message."""
        return self.sid is not None and 200 <= self.http_status < 300


class ListedMessage(msgspec.Struct, frozen=True):
    """One message from Twilio's Messages list."""

    sid: str
    to: str
    from_: str
    status: str
    error_code: int | None
    date_created: datetime | None
    date_sent: datetime | None
    body: str


async def _mark_sent(
    _session: aiohttp.ClientSession, ctx: SimpleNamespace, _params: object
) -> None:
    """Trace hook: the request headers are about to be written (buffered, and going out with
    the body when there is one: a request with an ``on_wire`` hook counts as sent there)."""
    progress = ctx.trace_request_ctx
    if progress["on_wire"] is None:
        progress["sent"] = True


async def _on_wire(
    _session: aiohttp.ClientSession, ctx: SimpleNamespace, _params: object
) -> None:
    """Trace hook: the first body chunk is about to be handed to the socket, with the headers;
    the request's ``on_wire`` runs first, and may withdraw it."""
    progress = ctx.trace_request_ctx
    on_wire = progress["on_wire"]
    if progress["sent"] or on_wire is None:
        return
    try:
        await on_wire()
    except SendWithdrawn:
        progress["withdrawn"] = True
        raise
    progress["sent"] = True


class _OnboarddHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """AsyncTwilioHttpClient with no retries, a real deadline and URL rewriting."""

    def __init__(self, api_base_url: str, request_timeout_s: float) -> None:
        super().__init__(pool_connections=False, max_retries=None)
        base = api_base_url.rstrip("/")
        self._base: SplitResult | None = None if base == TWILIO_API else urlsplit(base)
        self._timeout_s = request_timeout_s
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(_mark_sent)
        trace.on_request_chunk_sent.append(_on_wire)
        self.session = aiohttp.ClientSession(trace_configs=[trace])

    def rewrite(self, url: str) -> str:
        """Point a *.twilio.com URL at ``api_base_url`` when that is not Twilio itself."""
        if self._base is None:
            return url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        path = self._base.path.rstrip("/") + parts.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request with a hard deadline; never retried."""
        deadline = timeout if timeout is not None and timeout > 0 else self._timeout_s
        headers = dict(headers or {})
        if auth is not None:
            raw = f"{auth[0]}:{auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        progress: dict[str, Any] = {"sent": False, "withdrawn": False,
                                    "on_wire": _ON_WIRE.get()}
        try:
            async with (
                asyncio.timeout(deadline),
                self.session.request(
                    method.upper(),
                    self.rewrite(url),
                    params=params,
                    data=data,
                    headers=headers,
                    allow_redirects=allow_redirects,
                    trace_request_ctx=progress,
                ) as resp,
            ):
                text = await resp.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            what = f"{method.upper()} {urlsplit(url).path}: {type(exc).__name__}"
            if progress["withdrawn"]:
                raise SendWithdrawn(f"{what}: withdrawn before it was written") from exc
            if progress["sent"]:
                raise TwilioTimeout(f"{what}: request may have reached Twilio") from exc
            raise TwilioUnreachable(f"{what}: request not sent") from exc
        meta = _RESPONSE_META.get()
        if meta is not None:
            meta["status"] = str(resp.status)
            meta["retry_after"] = resp.headers.get("Retry-After", "")
        return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        """Close the aiohttp session."""
        await self.session.close()


def make_client(
    account_sid: str, auth_token: str, api_base_url: str, request_timeout_s: float
) -> Client:
    """A twilio Client for onboardd; call inside the running event loop."""
    asyncio.get_running_loop()  # RuntimeError outside a loop, before a session is made
    if request_timeout_s <= 0:
        raise ValueError(f"request_timeout_s must be > 0, got {request_timeout_s}")
    http_client = _OnboarddHttpClient(api_base_url, request_timeout_s)
    # A non-empty environment: an empty one falls back to os.environ (TWILIO_EDGE/REGION).
    return Client(account_sid, auth_token, http_client=http_client, environment={"ONBOARDD": "1"})


async def close_client(client: Client) -> None:
    """Close the client's aiohttp session."""
    await client.http_client.close()


def _retry_after(raw: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date)."""
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _refusal(exc: TwilioRestException | TwilioServiceException, meta: dict[str, str]) -> SendResult:
    """A SendResult for a create request Twilio refused."""
    if isinstance(exc, TwilioServiceException):
        message = exc.detail or exc.title
    else:
        message = str(exc.msg).removeprefix("Unable to create record: ")
    status = int(meta.get("status") or exc.status)
    code = exc.code if isinstance(exc.code, int) else None
    return SendResult(
        sid=None,
        status=None,
        num_segments=0,
        error_code=code,
        error_message=message,
        http_status=status,
        retry_after_s=_retry_after(meta.get("retry_after")),
    )


async def send_message(
    client: Client,
    *,
    from_: str,
    to: str,
    body: str | None,
    content_sid: str | None,
    content_variables: dict[str, str] | None,
    status_callback: str | None,
    on_wire: OnWire | None = None,
) -> SendResult:
    """Create one message; Twilio's refusals come back as a SendResult, transport errors raise.
    ``on_wire`` is awaited right before the request is written (it may raise SendWithdrawn)."""
    kwargs: dict[str, Any] = {"to": to, "from_": from_}
    if body is not None:
        kwargs["body"] = body
    if content_sid is not None:
        kwargs["content_sid"] = content_sid
    if content_variables is not None:
        kwargs["content_variables"] = msgspec.json.encode(content_variables).decode()
    if status_callback is not None:
        kwargs["status_callback"] = status_callback
    meta: dict[str, str] = {}
    token = _RESPONSE_META.set(meta)
    wire_token = _ON_WIRE.set(on_wire)
    try:
        message = await client.messages.create_async(**kwargs)
    except (TwilioRestException, TwilioServiceException) as exc:
        return _refusal(exc, meta)
    finally:
        _ON_WIRE.reset(wire_token)
        _RESPONSE_META.reset(token)
    return SendResult(
        sid=message.sid,
        status=message.status,
        num_segments=int(message.num_segments or 0),
        error_code=message.error_code,
        error_message=message.error_message,
        http_status=int(meta.get("status") or 201),
    )


def _list_error(exc: TwilioException) -> TwilioListError:
    """Turn the list call's exceptions (Page raises a bare TwilioException) into one type."""
    if isinstance(exc, TwilioRestException):
        return TwilioListError(exc.status, exc.code, str(exc.msg))
    if isinstance(exc, TwilioServiceException):
        return TwilioListError(exc.status, exc.code, exc.detail or exc.title)
    response = exc.args[1] if len(exc.args) > 1 else None
    if not isinstance(response, Response):
        return TwilioListError(0, None, str(exc))
    try:
        payload = msgspec.json.decode(response.text)
    except msgspec.DecodeError:
        payload = {}
    code = payload.get("code") if isinstance(payload, dict) else None
    message = payload.get("message", "") if isinstance(payload, dict) else ""
    return TwilioListError(
        response.status_code, code if isinstance(code, int) else None, message or str(exc)
    )


async def list_messages(
    client: Client,
    *,
    to: str | None,
    from_: str | None,
    date_sent_after: datetime | None,
    limit: int,
) -> list[ListedMessage]:
    """Messages matching the filters, newest first, at most ``limit``."""
    kwargs: dict[str, Any] = {"limit": limit, "page_size": max(1, min(limit, 1000))}
    if to is not None:
        kwargs["to"] = to
    if from_ is not None:
        kwargs["from_"] = from_
    if date_sent_after is not None:
        # twilio formats with strftime(...Z) and no conversion: hand it UTC.
        aware = date_sent_after if date_sent_after.tzinfo else date_sent_after.replace(tzinfo=UTC)
        kwargs["date_sent_after"] = aware.astimezone(UTC)
    try:
        records = await client.messages.list_async(**kwargs)
    except TwilioException as exc:
        raise _list_error(exc) from exc
    return [
        ListedMessage(
            sid=record.sid,
            to=record.to,
            from_=record.from_,
            status=record.status,
            error_code=record.error_code,
            date_created=record.date_created,
            date_sent=record.date_sent,
            body=record.body or "",
        )
        for record in records
    ]
