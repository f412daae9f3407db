"""In-memory record of every message the simulator accepted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple


class Transition(NamedTuple):
    """A status the message reaches at epoch time ``at``."""

    at: float
    status: str
    error_code: int | None


class MessageState(NamedTuple):
    """The message's status as seen at one moment."""

    status: str
    error_code: int | None
    date_sent: float | None
    date_updated: float


@dataclass(slots=True)
class MessageRecord:
    """One accepted message and its planned status timeline."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    content_sid: str | None
    content_variables: str | None
    status_callback: str | None
    messaging_service_sid: str | None
    channel: str
    num_segments: int
    created_at: float
    # When the create request reached the handler (before the simulated latency): where a
    # request "arrives", for measuring a sender's rate.
    arrived_at: float = 0.0
    timeline: list[Transition] = field(default_factory=list)
    callbacks_posted: list[str] = field(default_factory=list)

    def state_at(self, now: float) -> MessageState:
        """Status, error code and dates once every transition due by ``now`` has happened."""
        status, error_code, sent, updated = "queued", None, None, self.created_at
        for step in self.timeline:
            if step.at > now:
                break
            status, error_code, updated = step.status, step.error_code, step.at
            if sent is None and step.status in ("sent", "delivered", "undelivered", "read"):
                sent = step.at
        return MessageState(status, error_code, sent, updated)


class MessageStore:
    """Accepted messages, oldest first, indexed by SID and by To."""

    def __init__(self) -> None:
        self._records: list[MessageRecord] = []
        self._by_sid: dict[str, MessageRecord] = {}
        self._by_to: dict[str, list[MessageRecord]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: MessageRecord) -> None:
        """Remember an accepted message."""
        self._records.append(record)
        self._by_sid[record.sid] = record
        self._by_to.setdefault(record.to, []).append(record)

    def get(self, sid: str) -> MessageRecord | None:
        """The message with this SID, if accepted."""
        return self._by_sid.get(sid)

    def newest_first(self, to: str | None = None) -> Iterator[MessageRecord]:
        """All messages (or those to ``to``), newest first."""
        source = self._records if to is None else self._by_to.get(to, [])
        return reversed(source)

    def all(self) -> list[MessageRecord]:
        """Every message, oldest first."""
        return list(self._records)

    def clear(self) -> None:
        """Forget everything."""
        self._records.clear()
        self._by_sid.clear()
        self._by_to.clear()
