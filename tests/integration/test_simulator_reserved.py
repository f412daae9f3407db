"""The simulator's reserved block +91 90000 BNNNN: a fixed behaviour chosen by the digit B."""

from __future__ import annotations

import random

import pytest

from onboardd.simulator import SimulatorSettings
from onboardd.simulator.profile import choose_behaviour, reserved_behaviour
from tests.integration.conftest import Receiver
from tests.integration.test_simulator import FAST, started


@pytest.mark.parametrize(("number", "behaviour"), [
    ("+919000010000", "63003"),
    ("+919000019999", "63003"),
    ("+919000020001", "21211"),
    ("+919000031234", "undelivered"),
    ("+919000001234", None),   # B = 0: ordinary
    ("+919000041234", None),   # B = 4..9: ordinary
    ("+919000091234", None),
    ("+91900001234", None),    # too short
    ("+9190000123456", None),  # too long
    ("+919000012a45", None),
    ("+919876543210", None),
    ("+1900001234567", None),
    ("+15005550006", None),
])
def test_reserved_behaviour(number: str, behaviour: str | None) -> None:
    assert reserved_behaviour(number) == behaviour


def test_per_number_wins_over_the_block_and_random_rates_do_not_apply() -> None:
    settings = SimulatorSettings(per_number={"+919000020001": "read"}, error_rate_429=1.0)
    rng = random.Random(1)
    assert choose_behaviour(settings, rng, "+919000020001", "sms") == "read"
    assert choose_behaviour(settings, rng, "+919000020002", "sms") == "21211"
    assert choose_behaviour(settings, rng, "+919000030002", "whatsapp") == "undelivered"
    assert choose_behaviour(settings, rng, "+919000040002", "sms") == "429"


def test_not_on_whatsapp_concerns_whatsapp_only() -> None:
    settings = SimulatorSettings()
    rng = random.Random(1)
    assert choose_behaviour(settings, rng, "+919000010001", "whatsapp") == "63003"
    assert choose_behaviour(settings, rng, "+919000010001", "sms") is None


def test_numbers_outside_the_block_draw_exactly_as_before() -> None:
    """The same seeded draws, number by number, as a number the block does not know."""
    settings = SimulatorSettings(error_rate_429=0.3, error_rate_5xx=0.3,
                                 whatsapp_unreachable_rate=0.3)
    outside = ["+919000001111", "+919000051111", "+919876543210", "+15551230001"]
    first, second = random.Random(5), random.Random(5)
    for number in outside * 20:
        assert (choose_behaviour(settings, first, number, "whatsapp")
                == choose_behaviour(settings, second, "+15551239999", "whatsapp"))


async def test_through_the_simulator_api(receiver: Receiver) -> None:
    async with started(**FAST) as sim:
        invalid = await sim.send("+919000020001")
        assert (invalid.http_status, invalid.error_code) == (400, 21211)
        invalid_wa = await sim.send("whatsapp:+919000020001")
        assert (invalid_wa.http_status, invalid_wa.error_code) == (400, 21211)
        no_wa = await sim.send("whatsapp:+919000010001", status_callback=receiver.url)
        by_sms = await sim.send("+919000010001", status_callback=receiver.url)
        lost = await sim.send("+919000030001", status_callback=receiver.url)
        normal = await sim.send("+919000040001", status_callback=receiver.url)
        assert all(r.accepted for r in (no_wa, by_sms, lost, normal))
        await receiver.wait_for(1 + 2 + 2 + 2)
        assert receiver.statuses(no_wa.sid) == ["failed"]
        assert receiver.statuses(by_sms.sid) == ["sent", "delivered"]
        assert receiver.statuses(lost.sid) == ["sent", "undelivered"]
        assert receiver.statuses(normal.sid) == ["sent", "delivered"]
        codes = {p["MessageSid"]: p.get("ErrorCode") for _u, p, _s in receiver.calls
                 if p["MessageStatus"] in ("failed", "undelivered")}
        assert codes == {no_wa.sid: "63003", lost.sid: "30003"}
