"""A salon's customer export as real ones look (pure: no I/O, the same rows for the same seed).

Indian names, phone numbers written every way spreadsheets hold them, optional emails, about
5 % bad rows (no name, a broken number, a landline, a broken email) and about 3 % duplicates
(the same number again, written differently). Numbers of the simulator's reserved block
``+91 90000 BNNNN`` (see ``onboardd.simulator.profile``) give a realistic share of customers a
fixed delivery outcome: not on WhatsApp, invalid for Twilio, or not delivered.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from typing import Final, Literal

import msgspec

Kind = Literal["ok", "duplicate", "missing_name", "bad_phone", "landline", "bad_email"]
Behaviour = Literal["delivers", "not_on_whatsapp", "invalid_number", "undelivered"]

HEADERS: Final = ("Client Name", "Mobile No.", "Email", "Last Visit", "Visits")
BAD_KINDS: Final[tuple[Kind, ...]] = ("missing_name", "bad_phone", "landline", "bad_email")
BAD_SHARE: Final = 0.05
DUPLICATE_SHARE: Final = 0.03
# Shares of the importable customers whose number lies in the simulator's reserved block.
BEHAVIOUR_SHARES: Final[dict[Behaviour, float]] = {
    "not_on_whatsapp": 0.08,
    "invalid_number": 0.02,
    "undelivered": 0.02,
}
# The simulator's reserved block: +91 90000 B NNNN, B selecting the behaviour.
RESERVED_PREFIX: Final = "90000"
RESERVED_DIGIT: Final[dict[Behaviour, str]] = {
    "not_on_whatsapp": "1",
    "invalid_number": "2",
    "undelivered": "3",
}

FEMALE: Final = (
    "Priya", "Ananya", "Kavya", "Aishwarya", "Sneha", "Pooja", "Neha", "Divya", "Meera", "Lakshmi",
    "Anjali", "Riya", "Shreya", "Nandini", "Deepika", "Swati", "Kavita", "Sunita", "Ishita",
    "Tanvi", "Pallavi", "Radhika", "Sanjana", "Harini", "Bhavana", "Gayatri", "Nisha", "Aarti",
    "Fatima", "Zoya", "Simran", "Harpreet", "Jyoti", "Madhuri", "Revathi", "Keerthana",
)  # fmt: skip
MALE: Final = (
    "Rahul", "Arjun", "Vikram", "Rohan", "Aditya", "Karthik", "Siddharth", "Amit", "Rajesh",
    "Suresh", "Anil", "Manoj", "Vivek", "Nikhil", "Harsh", "Pranav", "Abhishek", "Gaurav",
    "Imran", "Farhan", "Gurpreet", "Manpreet", "Venkat", "Srinivas", "Prakash", "Dinesh",
)  # fmt: skip
SURNAMES: Final = (
    "Sharma", "Verma", "Gupta", "Iyer", "Iyengar", "Nair", "Menon", "Reddy", "Rao", "Patel",
    "Shah", "Mehta", "Joshi", "Kulkarni", "Deshpande", "Patil", "Singh", "Kaur", "Gill",
    "Chatterjee", "Banerjee", "Mukherjee", "Das", "Bose", "Pillai", "Krishnan", "Subramanian",
    "Naidu", "Khan", "Qureshi", "Ansari", "Agarwal", "Malhotra", "Kapoor", "Chopra", "Saxena",
    "Mishra", "Pandey", "Tiwari", "Yadav", "Hegde", "Shetty", "Bhat", "Fernandes", "D'Souza",
)  # fmt: skip
TITLES: Final = ("Mrs. ", "Ms. ", "Dr. ", "Mr. ")
EMAIL_DOMAINS: Final = ("gmail.com", "gmail.com", "gmail.com", "yahoo.co.in", "rediffmail.com",
                        "outlook.com", "hotmail.com")
# First digits of mobile series that are valid throughout (phonenumbers' metadata for IN).
MOBILE_SERIES: Final = ("9", "9", "9", "9", "9", "70", "72", "74", "84", "85")
LANDLINE_STD: Final = ("022", "080", "011", "044", "040", "033", "020", "079")
BROKEN_PHONES: Final = ("N/A", "not given", "12345", "0", "same as husband")


class Row(msgspec.Struct, frozen=True):
    """One line of the export with what the importer should make of it."""

    name: str
    phone: str
    email: str
    last_visit: str
    visits: int
    kind: Kind
    behaviour: Behaviour
    national: str  # the 10-digit mobile number ("" when the phone is not a usable one)

    def cells(self) -> list[str]:
        """The row as the spreadsheet shows it."""
        return [self.name, self.phone, self.email, self.last_visit, str(self.visits)]


def _mobile(rng: random.Random, taken: set[str], behaviour: Behaviour) -> str:
    """A fresh 10-digit mobile number; in the reserved block exactly when behaviour asks."""
    while True:
        if behaviour == "delivers":
            series = rng.choice(MOBILE_SERIES)
            number = series + "".join(rng.choices("0123456789", k=10 - len(series)))
            if number.startswith(RESERVED_PREFIX):
                continue
        else:
            number = (RESERVED_PREFIX + RESERVED_DIGIT[behaviour]
                      + "".join(rng.choices("0123456789", k=4)))
        if number not in taken:
            taken.add(number)
            return number


def written(rng: random.Random, national: str) -> str:
    """The number as one of the many ways exports write an Indian mobile."""
    a, b = national[:5], national[5:]
    forms = (national, national, national, f"{a} {b}", f"{a} {b}", f"+91-{a}-{b}",
             f"0{a} {b}", f"91{national}", f"(+91) {a} {b}", f"+91 {national}", f"+91{national}",
             f"{national[:3]}-{national[3:6]}-{national[6:]}", f"+91 {a} {b}")
    return rng.choice(forms)


def _name(rng: random.Random) -> tuple[str, str, str]:
    """(cell text, first name, surname): mostly tidy, sometimes shouting, initials or titles."""
    first = rng.choice(FEMALE if rng.random() < 0.7 else MALE)
    last = rng.choice(SURNAMES)
    roll = rng.random()
    if roll < 0.06:
        text = f"{first} {last}".upper()
    elif roll < 0.11:
        text = f"{first} {last}".lower()
    elif roll < 0.16:
        text = f"{last[0]}. {first}"
    elif roll < 0.21:
        text = f"{rng.choice(TITLES)}{first} {last}"
    elif roll < 0.26:
        text = f"  {first}  {last} "
    else:
        text = f"{first} {last}"
    return text, first, last


def _email(rng: random.Random, first: str, last: str) -> str:
    """A plausible address for about 60 % of customers, else empty."""
    if rng.random() >= 0.6:
        return ""
    local = rng.choice((f"{first}.{last}", f"{first}{last[0]}", f"{first}{rng.randint(1, 99)}",
                        f"{first[0]}{last}"))
    return f"{local.lower().replace(chr(39), '')}@{rng.choice(EMAIL_DOMAINS)}"


def _bad_email(rng: random.Random, first: str, last: str) -> str:
    local = f"{first}.{last}".lower().replace("'", "")
    return rng.choice((f"{local}@gmail", f"{local}@@yahoo.com", f"{local} gmail.com",
                       f"{local}@gmail .com"))


def _landline(rng: random.Random) -> str:
    std = rng.choice(LANDLINE_STD)
    digits = "2" + "".join(rng.choices("0123456789", k=7))
    return rng.choice((f"{std} {digits[:4]} {digits[4:]}", f"{std}-{digits}",
                       f"({std}) {digits[:4]} {digits[4:]}"))


def _broken_phone(rng: random.Random, national: str) -> str:
    """A mobile with digits missing, or something that is not a number at all."""
    if rng.random() < 0.6:
        short = national[: rng.choice((8, 9))]
        return f"{short[:5]} {short[5:]}"
    return rng.choice(BROKEN_PHONES)


def _plan_kinds(count: int, rng: random.Random) -> list[Kind]:
    """Exactly round(5 %) bad rows (kinds in turn) and round(3 %) duplicates, shuffled."""
    bad = round(count * BAD_SHARE)
    duplicates = round(count * DUPLICATE_SHARE)
    kinds: list[Kind] = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(bad)]
    kinds += ["duplicate"] * duplicates
    kinds += ["ok"] * (count - len(kinds))
    rng.shuffle(kinds)
    # A duplicate repeats an earlier row: the first row must be an original.
    if kinds and kinds[0] != "ok":
        first_ok = kinds.index("ok")
        kinds[0], kinds[first_ok] = kinds[first_ok], kinds[0]
    return kinds


def _behaviours(count: int, rng: random.Random) -> list[Behaviour]:
    """Behaviours for `count` importable customers with the configured shares."""
    out: list[Behaviour] = []
    for behaviour, share in BEHAVIOUR_SHARES.items():
        out += [behaviour] * round(count * share)
    out += ["delivers"] * (count - len(out))
    rng.shuffle(out)
    return out


def generate_customers(count: int, seed: int = 1, today: dt.date = dt.date(2025, 1, 1)
                       ) -> list[Row]:
    """`count` rows of a salon's export, the same for the same seed and day."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = random.Random(seed)
    kinds = _plan_kinds(count, rng)
    behaviours = iter(_behaviours(kinds.count("ok"), rng))
    taken: set[str] = set()
    rows: list[Row] = []
    originals: list[Row] = []
    for kind in kinds:
        text, first, last = _name(rng)
        visit = today - dt.timedelta(days=rng.randint(3, 720))
        last_visit = visit.strftime(rng.choice(("%d/%m/%Y", "%d-%b-%Y", "%d/%m/%Y")))
        visits = rng.randint(1, 40)
        if kind == "duplicate":
            original = rng.choice(originals)
            rows.append(Row(original.name.strip().title(), written(rng, original.national),
                            original.email, last_visit, visits, kind, original.behaviour,
                            original.national))
            continue
        behaviour: Behaviour = next(behaviours) if kind == "ok" else "delivers"
        national = _mobile(rng, taken, behaviour)
        phone, email, name = written(rng, national), _email(rng, first, last), text
        if kind == "missing_name":
            name = ""
        elif kind == "bad_phone":
            phone, national = _broken_phone(rng, national), ""
        elif kind == "landline":
            phone, national = _landline(rng), ""
        elif kind == "bad_email":
            email = _bad_email(rng, first, last)
        row = Row(name, phone, email, last_visit, visits, kind, behaviour, national)
        rows.append(row)
        if kind == "ok":
            originals.append(row)
    return rows


def to_csv(rows: list[Row]) -> bytes:
    """The export as Excel writes a CSV: UTF-8 with a byte order mark, CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow(row.cells())
    return out.getvalue().encode("utf-8-sig")
