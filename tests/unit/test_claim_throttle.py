"""The code-claim throttle's pure rules, the client address key, and the README's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onboardd.config import ConfigError, Offers, load
from onboardd.domain.claim_throttle import (
    KeyState,
    Policy,
    address_subject,
    charge,
    lockout_seconds,
    retry_after,
    user_subject,
)
from onboardd.domain.codes import ALPHABET, CODE_LENGTH, LEGACY_CODE_LENGTH

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CFG = Offers()
USER = Policy(CFG.claim_misses_per_user, CFG.claim_window_s, CFG.claim_lockout_s,
              CFG.claim_lockout_max_s, CFG.claim_memory_s)
ADDRESS = USER._replace(budget=CFG.claim_misses_per_ip)


def attempts(policy: Policy, state: KeyState, now: datetime, count: int
             ) -> tuple[KeyState, list[float | None]]:
    """Charge count attempts at the same instant; the waits seen."""
    waits = []
    for _ in range(count):
        outcome = charge(state, now, policy)
        if outcome.changed:
            state = outcome.state
        waits.append(outcome.wait_s)
    return state, waits


def test_budget_then_lockout_that_doubles_up_to_the_maximum() -> None:
    state, waits = attempts(USER, KeyState(), T0, 7)
    assert waits == [None] * 5 + [900.0, 900.0]
    assert state.lockouts == 1 and state.locked_until == T0 + timedelta(seconds=900)
    durations = [900.0]
    now = T0
    for _ in range(8):
        now = state.locked_until or now
        state, waits = attempts(USER, state, now, 6)
        assert waits[:5] == [None] * 5
        durations.append(waits[5] or 0.0)
    assert durations == [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400]
    assert [lockout_seconds(n, USER) for n in (0, 1, 7, 8, 1000)] == [
        900, 1800, 86400, 86400, 86400]


def test_running_lockout_answers_with_what_is_left_and_changes_nothing() -> None:
    state, _ = attempts(USER, KeyState(), T0, 6)
    later = charge(state, T0 + timedelta(seconds=600), USER)
    assert later.wait_s == 300.0 and not later.changed and later.state == state


def test_window_and_memory() -> None:
    state, _ = attempts(USER, KeyState(), T0, 4)
    # A new window: the budget is whole again.
    state, waits = attempts(USER, state, T0 + timedelta(seconds=900), 6)
    assert waits == [None] * 5 + [900.0]
    assert state.lockouts == 1
    # Still remembered just before claim_memory_s of quiet, forgotten after.
    quiet = state.last_attempt_at or T0
    remembered, waits = attempts(USER, state, quiet + timedelta(seconds=604799), 6)
    assert waits[5] == 1800.0 and remembered.lockouts == 2
    forgotten, waits = attempts(USER, state, quiet + timedelta(seconds=604800), 6)
    assert waits[5] == 900.0 and forgotten.lockouts == 1


def most_attempts_in_a_year(policy: Policy, quiet_after: int | None = None) -> int:
    """An attacker who tries whenever allowed (optionally going quiet to be forgotten)."""
    state, now, end, count = KeyState(), T0, T0 + timedelta(days=365), 0
    while now < end:
        outcome = charge(state, now, policy)
        if outcome.changed:
            state = outcome.state
        if outcome.wait_s is None:
            count += 1
            continue
        now = state.locked_until or now
        if quiet_after is not None and state.lockouts >= quiet_after:
            now = max(now, (state.last_attempt_at or now) + timedelta(seconds=policy.memory_s))
    return count


def test_the_readme_bounds_on_guesses_per_year() -> None:
    per_user = most_attempts_in_a_year(USER)
    per_address = most_attempts_in_a_year(ADDRESS)
    assert (per_user, per_address) == (1855, 7420)
    # Going quiet to be forgotten never pays.
    assert all(most_attempts_in_a_year(USER, k) < per_user for k in range(1, 10))


def expected_years_to_a_hit(length: int, live: int, accounts: int, addresses: int) -> float:
    """Expected years until an attacker with that many accounts and addresses hits a live code.

    Each guess is charged to one account and one address, so the attacker's yearly guesses are
    bounded by both budgets.
    """
    guesses_per_hit = len(ALPHABET) ** length / live
    guesses_per_year = min(accounts * most_attempts_in_a_year(USER),
                           addresses * most_attempts_in_a_year(ADDRESS))
    return guesses_per_hit / guesses_per_year


def test_the_readme_arithmetic() -> None:
    live, many = 100_000, 10_000
    assert len(ALPHABET) ** LEGACY_CODE_LENGTH == 1_073_741_824
    # One account on one address: the spec's 6 characters would pass.
    assert expected_years_to_a_hit(LEGACY_CODE_LENGTH, live, 1, 1) == pytest.approx(5.79,
                                                                                   abs=0.01)
    # 10,000 accounts on 10,000 addresses: 6 characters fall in hours, 8 within a year.
    assert expected_years_to_a_hit(LEGACY_CODE_LENGTH, live, many, many) * 365 * 24 == (
        pytest.approx(5.07, abs=0.01))
    assert expected_years_to_a_hit(8, live, many, many) == pytest.approx(0.59, abs=0.01)
    assert expected_years_to_a_hit(CODE_LENGTH, live, many, many) == pytest.approx(607, abs=1)
    # 10 characters hold the bar up to about 6 million accounts (and 1.5 million addresses).
    assert expected_years_to_a_hit(CODE_LENGTH, live, 6_000_000, 1_500_000) > 1


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("203.0.113.7", None, False, "203.0.113.7"),
    ("203.0.113.7", "198.51.100.1", False, "203.0.113.7"),
    ("10.0.0.2", "198.51.100.1, 10.0.0.1", True, "198.51.100.1"),
    ("10.0.0.2", " 198.51.100.1:5123 ,10.0.0.1", True, "198.51.100.1"),
    ("10.0.0.2", "[2001:db8:1:2::99]:443", True, "2001:db8:1:2::/64"),
    ("10.0.0.2", "not-an-address", True, "10.0.0.2"),
    ("10.0.0.2", "", True, "10.0.0.2"),
    ("2001:db8:aa:bb:1:2:3:4", None, False, "2001:db8:aa:bb::/64"),
    ("2001:db8:aa:bb:ffff::1", None, False, "2001:db8:aa:bb::/64"),
    ("::ffff:203.0.113.9", None, False, "203.0.113.9"),
    ("fe80::1%eth0", None, False, "fe80::/64"),
    (None, None, False, "unknown"),
])
def test_address_subject(peer: str | None, forwarded: str | None, trusted: bool,
                         expected: str) -> None:
    assert address_subject(peer, forwarded, trusted) == expected


def test_user_subject_and_retry_after() -> None:
    assert user_subject("user-1") == "user-1"
    long = user_subject("x" * 500)
    assert long.startswith("sha256:") and len(long) == 71 and long != user_subject("x" * 501)
    assert [retry_after(s) for s in (0.0, 0.2, 1.0, 899.01)] == [1, 1, 1, 900]


@pytest.mark.parametrize(("env", "message"), [
    ({"ONBOARDD_OFFERS_PHONE_REGION": "XX"}, "[offers] phone_region: 'XX' is not a region"),
    ({"ONBOARDD_OFFERS_CLAIM_MISSES_PER_IP": "0"}, "[offers] claim_misses_per_ip: must be"),
    ({"ONBOARDD_OFFERS_CLAIM_LOCKOUT_MAX_S": "60"},
     "[offers] claim_lockout_max_s: must be at least claim_lockout_s"),
    ({"ONBOARDD_OFFERS_CLAIM_MEMORY_S": "86400"},
     "[offers] claim_memory_s: must exceed claim_lockout_max_s"),
])
def test_bad_throttle_settings_stop_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(None, env)
    assert str(caught.value).startswith(message)
    assert load(None, {"ONBOARDD_OFFERS_PHONE_REGION": ""}).offers.phone_region == ""
