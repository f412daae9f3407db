"""The one rule for "did Twilio get this message?" (onboardd.twilio.reconcile): every case the
dispatcher's old rule and the periodic reconciliation's old rule covered, without a database or
a network (the lookup runs against a fake client and a fake pool)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException

from onboardd.config import Config
from onboardd.db.reconcile import ExpiredMessage
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.pii import PiiCipher
from onboardd.twilio import reconcile
from onboardd.twilio.client import ListedMessage, TwilioListError, TwilioTimeout
from onboardd.twilio.reconcile import SLACK, Attempt, find_send, pick, sender_of

START = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
TO = "whatsapp:+919876543210"
SENDER = "whatsapp:+14155238886"
CODE = "WELCOME-AB12CD34EF"
OURS = Attempt(to=TO, sender=SENDER, since=START, offer_code=CODE)


def sid(n: int) -> str:
    return f"SM{n:032x}"


def listed(n: int, *, at: datetime | None = START, to: str = TO, from_: str = SENDER,
           body: str = f"Hi Asha, your code {CODE}", status: str = "queued") -> ListedMessage:
    return ListedMessage(sid=sid(n), to=to, from_=from_, status=status, error_code=None,
                         date_created=at, date_sent=None, body=body)


# -- the pure rule ------------------------------------------------------------------------------

def test_nothing_listed_is_not_found() -> None:
    assert pick([], OURS) is None


def test_our_message_is_found() -> None:
    assert pick([listed(1, at=START + timedelta(seconds=1))], OURS) == listed(
        1, at=START + timedelta(seconds=1))


def test_skew_edge_inside_the_slack_is_ours_and_beyond_it_is_not() -> None:
    # Twilio's clock behind ours: created "before" the attempt began, within the slack.
    edge = listed(1, at=START - SLACK)
    assert pick([edge], OURS) == edge
    assert pick([listed(2, at=START - timedelta(seconds=3))], OURS) is not None
    assert pick([listed(3, at=START - SLACK - timedelta(seconds=1))], OURS) is None


def test_the_slack_covers_both_old_rules() -> None:
    # The old rules looked 5 s and 2 min back: the one rule misses nothing either found.
    assert timedelta(minutes=2) <= SLACK


def test_an_undated_message_is_not_excluded_by_time() -> None:
    assert pick([listed(1, at=None)], OURS) is not None


def test_another_sender_is_not_ours() -> None:
    assert pick([listed(1, from_="whatsapp:+14155230000")], OURS) is None
    assert pick([listed(2, from_="+15005550006")], OURS) is None


def test_another_recipient_is_not_ours() -> None:
    assert pick([listed(1, to="whatsapp:+919876543211")], OURS) is None
    assert pick([listed(2, to="+919876543210")], OURS) is None  # SMS, not WhatsApp


def test_a_body_without_our_offer_code_is_not_ours() -> None:
    # Another salon (or customer) on the same sender and number: its own code in the body.
    assert pick([listed(1, body="Hi Asha, your code WELCOME-ZZZZZZZZZZ")], OURS) is None


def test_a_hidden_body_cannot_tell_so_it_counts() -> None:
    assert pick([listed(1, body="")], OURS) is not None


def test_without_a_code_of_our_own_the_body_is_not_checked() -> None:
    bare = Attempt(to=TO, sender=SENDER, since=START, offer_code=None)
    assert pick([listed(1, body="Hello")], bare) is not None


def test_a_sid_another_invitation_carries_is_not_ours() -> None:
    assert pick([listed(1)], OURS, taken={sid(1)}) is None
    later = listed(2, at=START + timedelta(seconds=5))
    assert pick([later, listed(1)], OURS, taken={sid(1)}) == later


def test_of_several_candidates_the_earliest_wins() -> None:
    # Twilio lists newest first.
    newest = listed(3, at=START + timedelta(seconds=30))
    middle = listed(2, at=START + timedelta(seconds=10))
    undated = listed(4, at=None)
    earliest = listed(1, at=START - timedelta(seconds=1))
    assert pick([undated, newest, middle, earliest], OURS) == earliest
    assert pick([undated, newest], OURS) == newest  # an undated one only when nothing else


def test_only_matching_messages_compete_for_earliest() -> None:
    stranger = listed(1, at=START, from_="whatsapp:+10000000000")
    other_code = listed(2, at=START + timedelta(seconds=1), body="code WELCOME-OTHER00000")
    ours = listed(3, at=START + timedelta(seconds=2))
    assert pick([ours, other_code, stranger], OURS) == ours


def test_sender_is_the_rows_else_the_channels_default() -> None:
    cfg = Config()
    assert sender_of(cfg, "whatsapp", "whatsapp:+15550001111") == "whatsapp:+15550001111"
    assert sender_of(cfg, "whatsapp", None) == "whatsapp:+14155238886"
    assert sender_of(cfg, "sms", None) == "+15005550006"


def test_settle_cut_off_accepts_what_twilio_has_and_retries_what_it_has_not() -> None:
    now = START + timedelta(minutes=1)
    found = listed(7, at=START + timedelta(seconds=1), status="delivered")
    accepted, status = reconcile.settle_cut_off("m1", "whatsapp", SENDER, found, now)
    assert isinstance(accepted, SendOutcome) and isinstance(status, StatusCallback)
    assert (accepted.outcome, accepted.sid, accepted.sender, accepted.at) == (
        "accepted", sid(7), SENDER, found.date_created)
    assert (status.sid, status.status) == (sid(7), "delivered")
    (retry,) = reconcile.settle_cut_off("m1", "whatsapp", SENDER, None, now)
    assert isinstance(retry, SendOutcome)
    assert (retry.outcome, retry.sid, retry.next_attempt_at) == ("retry", None, now)


# -- the lookup around it -----------------------------------------------------------------------

@dataclass
class _Record:
    sid: str
    to: str
    from_: str
    status: str
    error_code: int | None
    date_created: datetime | None
    date_sent: datetime | None
    body: str


class FakeClient:
    """Twilio's Messages list: what it was asked, and a fixed answer or error."""

    def __init__(self, answer: list[ListedMessage] | Exception) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []
        self.messages = self

    async def list_async(self, **kwargs: Any) -> list[_Record]:
        self.asked.append(kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return [_Record(m.sid, m.to, m.from_, m.status, m.error_code, m.date_created,
                        m.date_sent, m.body) for m in self.answer]


class FakePool:
    """known_sids' view of the database: which SIDs invitations carry."""

    def __init__(self, carried: set[str]) -> None:
        self.carried = carried
        self.asked: list[list[str]] = []

    async def fetch(self, _sql: str, sids: list[str]) -> list[dict[str, str]]:
        self.asked.append(sids)
        return [{"sid": s} for s in sids if s in self.carried]


async def test_lookup_asks_twilio_by_recipient_sender_and_time_with_one_limit() -> None:
    client, pool = FakeClient([]), FakePool(set())
    assert await find_send(client, pool, OURS) is None
    (asked,) = client.asked
    assert asked["to"] == TO and asked["from_"] == SENDER
    assert asked["date_sent_after"] == START - SLACK
    assert asked["limit"] == reconcile.LIST_LIMIT
    assert pool.asked == []  # no candidate: nothing to check in the database


async def test_lookup_skips_sids_already_carried_and_takes_the_earliest_other() -> None:
    carried = listed(1, at=START)
    fresh = listed(2, at=START + timedelta(seconds=2))
    stranger = listed(3, from_="whatsapp:+10000000000")
    client, pool = FakeClient([fresh, stranger, carried]), FakePool({sid(1)})
    found = await find_send(client, pool, OURS)
    assert found is not None and found.sid == sid(2)
    assert pool.asked == [[sid(2), sid(1)]]  # only candidates are checked


@pytest.mark.parametrize("error", [
    TwilioRestException(500, "https://api.twilio.com/x", "boom", code=20500),
    TwilioTimeout("deadline"),
])
async def test_a_lookup_error_is_raised_never_read_as_not_found(error: Exception) -> None:
    with pytest.raises((TwilioListError, TwilioTimeout)):
        await find_send(FakeClient(error), FakePool(set()), OURS)


async def test_the_sweep_leaves_a_message_it_could_not_ask_about_leased(
        cipher: PiiCipher) -> None:
    """A lookup error: no outcome at all (neither accepted nor a retry that would resend); the
    row keeps its lease and the next sweep asks again."""
    services: Any = SimpleNamespace(cfg=Config(), cipher=cipher, pool=FakePool(set()))
    message = ExpiredMessage(id="m1", campaign_id="c1", channel="whatsapp", sender=None,
                             attempt_started_at=START,
                             normalized_phone_enc=cipher.encrypt("+919876543210", "phone"),
                             offer_code=CODE)
    report = reconcile.ReconcileReport()
    gate = asyncio.Semaphore(1)
    failing = FakeClient(TwilioRestException(503, "https://api.twilio.com/x", "down"))
    assert await reconcile._sweep_one(services, failing, message, gate, report) == []
    assert (report.lookups_failed, report.sends_found, report.sends_not_found) == (1, 0, 0)
    # Asked with the channel's default sender, since the row had none.
    assert failing.asked[0]["from_"] == SENDER and failing.asked[0]["to"] == TO

    found = await reconcile._sweep_one(services, FakeClient([listed(5)]), message, gate,
                                       report)
    assert [type(e).__name__ for e in found] == ["SendOutcome", "StatusCallback"]
    assert report.sends_found == 1
    gone = await reconcile._sweep_one(services, FakeClient([]), message, gate, report)
    assert [e.outcome for e in gone if isinstance(e, SendOutcome)] == ["retry"]
