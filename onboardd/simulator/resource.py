"""Render a stored message as Twilio's Message resource JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from onboardd.simulator.errors import message_for
from onboardd.simulator.store import MessageRecord, MessageState

API_VERSION = "2010-04-01"


@lru_cache(maxsize=4096)
def _rfc2822_second(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC)).replace("-0000", "+0000")


def rfc2822(ts: float | None) -> str | None:
    """Epoch seconds as Twilio's RFC 2822 timestamp (``Thu, 30 Jul 2015 20:12:31 +0000``)."""
    return None if ts is None else _rfc2822_second(int(ts))


def message_uri(account_sid: str, sid: str) -> str:
    """The resource's own URI."""
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def render(record: MessageRecord, now: float, *, as_created: bool = False) -> dict[str, Any]:
    """The Message resource as Twilio returns it from fetch and list (or create: queued)."""
    if as_created:
        state = MessageState("queued", None, None, record.created_at)
    else:
        state = record.state_at(now)
    uri = message_uri(record.account_sid, record.sid)
    base = uri[: -len(".json")]
    return {
        "account_sid": record.account_sid,
        "api_version": API_VERSION,
        "body": record.body,
        "date_created": rfc2822(record.created_at),
        "date_sent": rfc2822(state.date_sent),
        "date_updated": rfc2822(state.date_updated),
        "direction": "outbound-api",
        "error_code": state.error_code,
        "error_message": None if state.error_code is None else message_for(state.error_code),
        "from": record.from_,
        "messaging_service_sid": record.messaging_service_sid,
        "num_media": "0",
        "num_segments": str(record.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": record.sid,
        "status": state.status,
        "subresource_uris": {
            "media": f"{base}/Media.json",
            "feedback": f"{base}/Feedback.json",
        },
        "to": record.to,
        "uri": uri,
    }
