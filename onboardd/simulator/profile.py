"""The seeded behaviour profile: which outcome a request gets and which statuses follow.

Reserved numbers, in the spirit of Twilio's test numbers: the block of Indian mobiles
``+91 90000 BNNNN`` (E.164 ``+9190000BNNNN``) has a fixed behaviour chosen by the digit B,
so a demo or a test can give a realistic share of its customers a known outcome:

- B = 1: not on WhatsApp (63003; SMS reaches it, so a ``both`` campaign falls back)
- B = 2: invalid number (21211, refused at once on every channel)
- B = 3: undelivered (accepted, then ``undelivered`` with 30003)

Every other B, and every number outside the block, behaves as configured. ``per_number``
wins over the block.
"""

from __future__ import annotations

import random
from typing import Final

from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.store import Transition

# Behaviours answered at once with an HTTP error.
HTTP_ERRORS: dict[str, int] = {"429": 20429, "500": 20500, "503": 20503}
IMMEDIATE_CODES: dict[str, int] = {"21211": 21211, "21610": 21610}
WHATSAPP_CODES: dict[str, int] = {"63003": 63003, "63024": 63024, "63016": 63016}
# Behaviours whose message is accepted but ends in a failure status.
FINAL_FAILURES: dict[str, tuple[str, int]] = {
    "undelivered": ("undelivered", 30003),
    "failed": ("failed", 30008),
}


# The reserved block: "+9190000" then the digit choosing the behaviour, then four digits.
RESERVED_PREFIX: Final = "+9190000"
RESERVED_BEHAVIOURS: Final[dict[str, str]] = {"1": "63003", "2": "21211", "3": "undelivered"}
_RESERVED_LENGTH: Final = len(RESERVED_PREFIX) + 5


def reserved_behaviour(to_number: str) -> str | None:
    """The fixed behaviour of a number of the reserved block +91 90000 BNNNN, else None."""
    if len(to_number) != _RESERVED_LENGTH or not to_number.startswith(RESERVED_PREFIX):
        return None
    tail = to_number[len(RESERVED_PREFIX):]
    return RESERVED_BEHAVIOURS.get(tail[0]) if tail.isdigit() else None


def choose_behaviour(
    settings: SimulatorSettings, rng: random.Random, to_number: str, channel: str
) -> str | None:
    """The configured behaviour for this number (per_number, else the reserved block), else a
    random draw from the error rates."""
    fixed = settings.per_number.get(to_number)
    if fixed is None:
        fixed = reserved_behaviour(to_number)
    # A WhatsApp channel error describes the number's WhatsApp account: SMS still reaches it.
    if fixed is not None and not (fixed in WHATSAPP_CODES and channel != "whatsapp"):
        return fixed
    if settings.error_rate_429 and rng.random() < settings.error_rate_429:
        return "429"
    if settings.error_rate_5xx and rng.random() < settings.error_rate_5xx:
        return rng.choice(("500", "503"))
    if settings.timeout_rate and rng.random() < settings.timeout_rate:
        return "timeout"
    if (
        channel == "whatsapp"
        and settings.whatsapp_unreachable_rate
        and rng.random() < settings.whatsapp_unreachable_rate
    ):
        return rng.choice(("63003", "63024"))
    return None


def plan_timeline(
    settings: SimulatorSettings, behaviour: str | None, channel: str, created_at: float
) -> list[Transition]:
    """The statuses an accepted message reaches, with the epoch time of each."""
    sent_at = created_at + settings.sent_after_ms / 1000
    delivered_at = created_at + settings.delivered_after_ms / 1000
    if behaviour in WHATSAPP_CODES:
        return [Transition(sent_at, "failed", WHATSAPP_CODES[behaviour])]
    if behaviour == "failed":
        return [Transition(sent_at, "failed", 30008)]
    steps = [Transition(sent_at, "sent", None)]
    if behaviour == "undelivered":
        steps.append(Transition(delivered_at, "undelivered", 30003))
        return steps
    steps.append(Transition(delivered_at, "delivered", None))
    if channel == "whatsapp" or behaviour == "read":
        steps.append(Transition(created_at + settings.read_after_ms / 1000, "read", None))
    return steps


def plan_callbacks(
    settings: SimulatorSettings, rng: random.Random, timeline: list[Transition]
) -> list[tuple[float, Transition]]:
    """When each status callback is posted: in order, or with one swapped or duplicated."""
    posts = [(step.at, step) for step in timeline]
    rate = settings.callback_out_of_order_rate
    if len(posts) >= 2 and rate and rng.random() < rate:
        (first_at, first), (second_at, second) = posts[0], posts[1]
        posts[0], posts[1] = (first_at, second), (second_at, first)
    rate = settings.callback_duplicate_rate
    if posts and rate and rng.random() < rate:
        at, step = posts[rng.randrange(len(posts))]
        posts.append((at + 0.05, step))
    return posts
