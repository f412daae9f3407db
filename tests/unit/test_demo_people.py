"""The demo's pure parts: the customer export (messy like a real one, checked against the real
validators) and the story's calendar."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from onboardd.demo import people, story
from onboardd.demo.people import Row, generate_customers, to_csv
from onboardd.domain.phones import PhoneError, normalize_phone
from onboardd.importing.files import read_table
from onboardd.importing.mapping import guess_mapping
from onboardd.importing.rows import (
    DUPLICATE_PHONE,
    INVALID_EMAIL,
    INVALID_PHONE,
    NAME_REQUIRED,
    NOT_MOBILE,
    validate_table,
)
from onboardd.simulator.profile import reserved_behaviour

ROWS = generate_customers(400, seed=7)
EXPECTED_ERRORS = {
    "missing_name": NAME_REQUIRED,
    "bad_phone": INVALID_PHONE,
    "landline": NOT_MOBILE,
    "bad_email": INVALID_EMAIL,
    "duplicate": DUPLICATE_PHONE,
}


def tally(rows: list[Row]) -> dict[str, int]:
    """How many rows the importer should import, reject and skip as duplicates."""
    duplicates = sum(1 for r in rows if r.kind == "duplicate")
    imported = sum(1 for r in rows if r.kind == "ok")
    return {"imported": imported, "failed": len(rows) - imported - duplicates,
            "duplicates": duplicates}



def test_same_seed_same_rows_other_seed_other_rows() -> None:
    assert generate_customers(400, seed=7) == ROWS
    assert to_csv(generate_customers(400, seed=7)) == to_csv(ROWS)
    other = generate_customers(400, seed=8)
    assert other != ROWS
    assert {r.national for r in other} != {r.national for r in ROWS}


def test_about_five_percent_bad_rows_of_every_kind_and_some_duplicates() -> None:
    kinds = Counter(r.kind for r in ROWS)
    bad = sum(kinds[k] for k in people.BAD_KINDS)
    assert bad == 20  # 5 % of 400
    assert all(kinds[k] == 5 for k in people.BAD_KINDS)
    assert kinds["duplicate"] == 12  # 3 %
    assert tally(ROWS) == {"imported": 368, "failed": 20, "duplicates": 12}
    for count in (20, 150, 1000):
        rows = generate_customers(count, seed=3)
        share = sum(1 for r in rows if r.kind in people.BAD_KINDS) / count
        assert 0.04 <= share <= 0.06
        assert any(r.kind == "duplicate" for r in rows)


def test_the_importer_reads_the_file_as_intended() -> None:
    """The real file reader, column guess and row validation reach the generator's verdicts."""
    table = read_table("csv", to_csv(ROWS), max_rows=10_000)
    mapping = guess_mapping(table.headers)
    assert (mapping.name, mapping.phone, mapping.email) == (0, 1, 2)
    results = validate_table(table, mapping, "IN")
    assert len(results) == len(ROWS)
    for row, result in zip(ROWS, results, strict=True):
        if row.kind == "ok":
            assert result.valid, (row, result.errors)
            assert result.phone == "+91" + row.national
        else:
            assert EXPECTED_ERRORS[row.kind] in result.errors, (row, result.errors)


def test_duplicates_repeat_an_earlier_number_in_another_spelling() -> None:
    seen: dict[str, str] = {}
    respelled = 0
    for row in ROWS:
        if row.kind == "duplicate":
            assert row.national in seen
            respelled += seen[row.national] != row.phone
        elif row.national:
            assert row.national not in seen
            seen[row.national] = row.phone
    assert respelled >= 6


def test_phone_formats_vary_like_real_exports() -> None:
    phones = [r.phone for r in ROWS if r.kind == "ok"]
    shapes = Counter(re.sub(r"\d", "d", p) for p in phones)
    for example in ("9876543210", "98765 43210", "+91-98765-43210", "098765 43210",
                    "919876543210", "(+91) 98765 43210"):
        assert re.sub(r"\d", "d", example) in shapes
    assert len(shapes) >= 8
    # None dominates: the plain ten digits are the most common, at most about a quarter.
    assert max(shapes.values()) < len(phones) * 0.35


def test_names_are_indian_and_messy() -> None:
    firsts = set(people.FEMALE) | set(people.MALE)
    named = [r.name for r in ROWS if r.name]
    words = Counter(w.strip(".").title() for n in named for w in n.split())
    assert sum(words[f] for f in firsts) >= len(named) * 0.95
    assert sum(words[s.title()] for s in people.SURNAMES) >= len(named) * 0.75
    assert any(n.isupper() for n in named)
    assert any(n.islower() for n in named)
    assert any(n != n.strip() for n in named)
    assert any(re.match(r"(Mrs|Ms|Dr|Mr)\. ", n) for n in named)


def test_emails_optional_and_valid_unless_meant_bad() -> None:
    emails = [r.email for r in ROWS if r.kind == "ok"]
    assert 0.4 < sum(1 for e in emails if e) / len(emails) < 0.8
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z.]+\.[a-z]+", e) for e in emails if e)


def test_reserved_block_shares_match_the_simulator() -> None:
    ok = [r for r in ROWS if r.kind == "ok"]
    by_behaviour = Counter(r.behaviour for r in ok)
    assert by_behaviour["not_on_whatsapp"] == round(len(ok) * 0.08)
    assert by_behaviour["invalid_number"] == round(len(ok) * 0.02)
    assert by_behaviour["undelivered"] == round(len(ok) * 0.02)
    simulator = {"delivers": None, "not_on_whatsapp": "63003", "invalid_number": "21211",
                 "undelivered": "undelivered"}
    for row in ok:
        assert reserved_behaviour(normalize_phone(row.phone)) == simulator[row.behaviour]


def test_landlines_and_broken_numbers_are_refused() -> None:
    for row in ROWS:
        if row.kind in ("landline", "bad_phone"):
            with pytest.raises(PhoneError):
                normalize_phone(row.phone)


def test_csv_is_excel_flavoured() -> None:
    data = to_csv(ROWS[:5])
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    assert next(csv.reader(io.StringIO(text))) == list(people.HEADERS)


def test_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_customers(0)


# --- the story: when things happen (onboardd/demo/story.py, pure as well) -------------------

NOW = datetime(2025, 3, 15, 9, 20, tzinfo=UTC)
IST = ZoneInfo("Asia/Kolkata")


@pytest.mark.parametrize("days", [7, 30, 60, 365])
def test_calendar_in_order_within_the_days_at_local_office_hours(days: int) -> None:
    cal = story.calendar(NOW, days, "Asia/Kolkata")
    assert NOW - timedelta(days=days) <= cal.start < NOW - timedelta(days=days - 1)
    assert cal.start < cal.offer < cal.launch < cal.reminder < cal.end < NOW
    assert cal.start.astimezone(IST).time() == time(11, 0)
    assert cal.launch.astimezone(IST).time() == time(10, 30)
    assert cal.reminder.astimezone(IST).time() == time(18, 0)
    assert cal.reminder - cal.launch > timedelta(days=days / 3)
    with pytest.raises(ValueError, match="at least 7"):
        story.calendar(NOW, 6)


def test_registrations_follow_the_invitation_while_people_are_awake() -> None:
    cal = story.calendar(NOW, 60)
    rng = random.Random(3)
    delivered = {f"c{i}": cal.launch + timedelta(seconds=i) for i in range(200)}
    until = cal.reminder - story.QUIET_END
    times = story.registrations(delivered, until, cal.zone, rng)
    assert times == story.registrations(delivered, until, cal.zone, random.Random(3))
    assert all(delivered[c] + story.MIN_REACTION <= t < until for c, t in times.items())
    assert all(7 <= t.astimezone(IST).hour < 23 for t in times.values())
    days = sorted((t - cal.launch).days for t in times.values())
    assert days[len(days) // 2] <= 7 < days[-1]  # most within a week, some much later


def test_bookings_after_registration_before_the_offer_expires_while_open() -> None:
    cal = story.calendar(NOW, 60)
    rng = random.Random(4)
    registered = {f"c{i}": cal.launch + timedelta(days=i % 50, hours=3) for i in range(80)}
    plan = story.bookings(registered, story.booked_count(80), 30, cal.end, cal.zone, rng)
    assert len(plan) == 40 and len({b.customer_id for b in plan}) == 40
    for b in plan:
        assert registered[b.customer_id] < b.at < registered[b.customer_id] + timedelta(days=30)
        assert b.at < cal.end and b.amount_in_paisa >= 50_000
        assert 10 <= b.at.astimezone(IST).hour < 20


def test_about_thirty_percent_register_two_thirds_after_the_launch() -> None:
    for seed in range(20):
        first, second = story.registration_target(300, random.Random(seed))
        assert 0.27 * 300 <= first + second <= 0.33 * 300
        assert first > second > 0
