"""Twilio webhook forms, strictly: the raw body decoded, then the fields onboardd uses checked.

Pure functions, no I/O. The webhook reads the raw body (bounded by ``MAX_BODY_BYTES``);
``parse_form`` accepts only ``application/x-www-form-urlencoded`` UTF-8 (the only thing Twilio
posts) and returns the params the signature is computed over. Only a signed form is then
checked field by field (``status_fields``, ``inbound_fields``): a SID has Twilio's shape, an
error code fits an int32, no field holds a NUL, a status is one Twilio documents. Every refusal
is a ``FormError`` naming the field, so nothing malformed ever reaches the status recorder.
"""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Annotated, Final, Literal, get_args
from urllib.parse import parse_qsl

import msgspec
from multidict import MultiDict

from onboardd.domain.twilio_sids import SID_LENGTH, is_account_sid, is_message_sid

FORM_TYPE: Final = "application/x-www-form-urlencoded"
MAX_BODY_BYTES: Final = 64 * 1024  # Twilio's forms are under 10 KB, a 4096-char body included
MAX_FIELDS: Final = 200
MAX_ADDRESS_CHARS: Final = 64  # "whatsapp:+<15 digits>" and the like; the columns are 64
MAX_ERROR_MESSAGE_CHARS: Final = 1024
MAX_TEXT_BODY_CHARS: Final = 4096  # WhatsApp's limit; SMS bodies stop at 1600
INT32_MAX: Final = 2**31 - 1
# Every value Twilio documents for MessageStatus (the recorder ignores the inbound ones).
TwilioStatus = Literal["accepted", "scheduled", "canceled", "queued", "sending", "sent",
                       "failed", "delivered", "undelivered", "receiving", "received", "read",
                       "partially_delivered"]
TWILIO_STATUSES: Final = frozenset(get_args(TwilioStatus))
_MESSAGE_SID: Final = msgspec.Meta(pattern="^(SM|MM)[0-9a-fA-F]{32}$")
_ACCOUNT_SID: Final = msgspec.Meta(pattern="^AC[0-9a-fA-F]{32}$")


class FormError(Exception):
    """A webhook body or field refused; ``field`` names it when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class StatusCallbackForm(msgspec.Struct, frozen=True, rename="pascal"):
    """A status callback as Twilio posts it (the fields onboardd reads; others are ignored)."""

    message_sid: Annotated[str, _MESSAGE_SID]
    message_status: TwilioStatus
    account_sid: Annotated[str, _ACCOUNT_SID] | None = None
    error_code: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)] | None = None
    error_message: Annotated[str, msgspec.Meta(max_length=MAX_ERROR_MESSAGE_CHARS)] | None = (
        None)


class InboundForm(msgspec.Struct, frozen=True, rename="pascal"):
    """An inbound message as Twilio posts it: STOP, START or HELP words act on the sender."""

    from_: Annotated[str, msgspec.Meta(max_length=MAX_ADDRESS_CHARS,
                                       description="The customer (whatsapp:+91... or +91...)")
                     ] = msgspec.field(name="From")
    to: Annotated[str, msgspec.Meta(max_length=MAX_ADDRESS_CHARS,
                                    description="Our sender number")]
    body: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_BODY_CHARS)] = ""
    message_sid: Annotated[str, _MESSAGE_SID] | None = None
    account_sid: Annotated[str, _ACCOUNT_SID] | None = None


class StatusFields(msgspec.Struct, frozen=True):
    """The checked fields of a status callback."""

    sid: str
    status: str
    error_code: int | None
    error_message: str | None


class InboundFields(msgspec.Struct, frozen=True):
    """The checked fields of an inbound message."""

    sid: str | None
    sender: str  # To: our number
    phone: str  # From, without the whatsapp: prefix
    text: str


def _shown(value: str, limit: int = 40) -> str:
    """A value quoted in an error message: short, NULs visible."""
    text = value.replace("\x00", "\\0")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _content_type(header: str) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type header, lower-cased, read by the stdlib's MIME
    header parser (quoted and RFC 2231 parameters included). The media type is the one sent,
    "" when none was, not the parser's text/plain default, so a refusal can quote it; of a
    repeated charset the last counts."""
    message = Message()
    message["Content-Type"] = header
    (media, _), *params = message.get_params(failobj=[("", "")])
    charsets = [value for name, value in params if name.lower() == "charset"]
    charset = collapse_rfc2231_value(charsets[-1]).lower() if charsets else None
    return media.strip().lower(), charset


# What Twilio sends, answered without the MIME parser (a few microseconds on every webhook).
_PLAIN_FORM_TYPES: Final[dict[str, tuple[str, str | None]]] = {
    FORM_TYPE: (FORM_TYPE, None),
    FORM_TYPE + "; charset=utf-8": (FORM_TYPE, "utf-8"),
    FORM_TYPE + "; charset=UTF-8": (FORM_TYPE, "utf-8"),
}


def parse_form(raw: bytes, content_type: str) -> MultiDict[str]:
    """The params of a URL-encoded UTF-8 form body; FormError for anything else."""
    media, charset = _PLAIN_FORM_TYPES.get(content_type) or _content_type(content_type)
    if media != FORM_TYPE:
        raise FormError(f"Content-Type: must be {FORM_TYPE} (as Twilio posts), got "
                        f"{_shown(media or '(none)')}", "Content-Type")
    if charset not in (None, "utf-8", "utf8"):
        raise FormError(f"Content-Type: charset must be UTF-8, got {_shown(charset)}",
                        "Content-Type")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError(f"body: not valid UTF-8 (byte {exc.start})") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise FormError("body: a percent-encoded value is not valid UTF-8") from None
    except ValueError:
        raise FormError(f"body: not a URL-encoded form of at most {MAX_FIELDS} name=value "
                        "pairs joined by &") from None
    return MultiDict(pairs)


def _no_nul(form: MultiDict[str]) -> None:
    for name, value in form.items():
        if "\x00" in name or "\x00" in value:
            raise FormError(f"{_shown(name)}: contains a NUL character", name.replace("\x00", ""))


def _first(form: MultiDict[str], *names: str) -> tuple[str, str]:
    """(name, value) of the first of names that is present and non-empty, else the first."""
    for name in names:
        if form.get(name):
            return name, form[name]
    return names[0], ""


def _sid(name: str, value: str, *, account: bool = False) -> None:
    if not value:
        return
    ok = is_account_sid(value) if account else is_message_sid(value)
    if not ok:
        shape = "AC" if account else "SM or MM"
        raise FormError(f"{name}: must be {shape} followed by 32 hex digits ({SID_LENGTH} "
                        f"characters), got {_shown(value)}", name)


def _max_chars(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise FormError(f"{name}: at most {limit} characters, got {len(value)}", name)


def _error_code(raw: str) -> int | None:
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > INT32_MAX:
        raise FormError(f"ErrorCode: must be a whole number from 0 to {INT32_MAX}, got "
                        f"{_shown(raw)}", "ErrorCode")
    return int(raw)


def status_fields(form: MultiDict[str]) -> StatusFields:
    """The status callback's SID, status and error, each checked; FormError otherwise."""
    _no_nul(form)
    sid_name, sid = _first(form, "MessageSid", "SmsSid")
    status_name, status = _first(form, "MessageStatus", "SmsStatus")
    if not sid or not status:
        missing = sid_name if not sid else status_name
        raise FormError(f"{missing}: is required (MessageSid and MessageStatus are)", missing)
    _sid(sid_name, sid)
    _sid("AccountSid", form.get("AccountSid", ""), account=True)
    status = status.strip().lower()
    if status not in TWILIO_STATUSES:
        raise FormError(f"{status_name}: unknown status {_shown(status)}; Twilio's are "
                        + ", ".join(sorted(TWILIO_STATUSES)), status_name)
    message = form.get("ErrorMessage") or None
    if message is not None:
        _max_chars("ErrorMessage", message, MAX_ERROR_MESSAGE_CHARS)
    return StatusFields(sid=sid, status=status, error_code=_error_code(form.get("ErrorCode", "")),
                        error_message=message)


def inbound_fields(form: MultiDict[str]) -> InboundFields:
    """The inbound message's sender, number, SID and text, each checked; FormError otherwise."""
    _no_nul(form)
    sender = form.get("To", "")
    address = form.get("From", "")
    for name, value in (("From", address), ("To", sender)):
        if not value.strip():
            raise FormError(f"{name}: is required (From and To are)", name)
        _max_chars(name, value, MAX_ADDRESS_CHARS)
    _sid("MessageSid", form.get("MessageSid", ""))
    _sid("AccountSid", form.get("AccountSid", ""), account=True)
    text = form.get("Body", "")
    _max_chars("Body", text, MAX_TEXT_BODY_CHARS)
    phone = address.removeprefix("whatsapp:").strip()
    if not phone:
        raise FormError("From: has no number after the whatsapp: prefix", "From")
    return InboundFields(sid=form.get("MessageSid") or None, sender=sender, phone=phone,
                         text=text)
