"""Generated customer files in the shapes real exports have (contact apps and salon software),
with what importing each row must give.

Every file carries the same people, written the way that export writes them: its own headers
(all of them, in order), its own multi-number cells, its own consent vocabulary. Contact apps
have no consent columns, so there everyone's consent is unknown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from onboardd.domain.phones import NOT_MOBILE


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    # (label, cell text) in the order the contact lists them.
    phones: list[tuple[str, str]]
    org: str = ""
    email: str = ""
    consent: bool | None = None  # None: blank
    blocked: bool = False
    # What importing must give.
    name: str = ""
    e164: str | None = None
    error: str | None = None
    from_org: bool = False


@dataclass(frozen=True)
class Expected:
    """What one row must import as (e164 None: the row fails with `error`)."""

    name: str
    e164: str | None
    status: str
    consent: str
    reason: str | None
    error: str | None = None
    from_org: bool = False


@dataclass(frozen=True)
class ExportFile:
    slug: str
    file_name: str
    data: bytes
    rows: list[Expected] = field(default_factory=list)
    has_consent: bool = False

    @property
    def imported(self) -> list[Expected]:
        return [r for r in self.rows if r.e164 is not None]

    @property
    def opted_out(self) -> list[Expected]:
        return [r for r in self.imported if r.status == "opted_out"]

    @property
    def invitable(self) -> list[Expected]:
        return [r for r in self.imported if r.status == "pending"]


SEP = "\x00"  # stands for the export's own separator between numbers in one cell

PEOPLE: list[Person] = [
    # Several numbers in one cell: the mobile first, then an office landline.
    Person("Rahul", "Verma", [("Mobile", f"098765 43211{SEP}+91 80 2345 6789")],
           email="rahul@example.com", consent=True, name="Rahul Verma", e164="+919876543211"),
    # The first number listed is a landline, the second a mobile.
    Person("Priya", "Nair", [("Home", "+91 80 2345 6790"), ("Mobile", "98765 43212")],
           name="Priya Nair", e164="+919876543212"),
    # Typed in capitals with a doubled space.
    Person("ANITA  RANI", "SHARMA", [("Mobile", "98765 43213")], consent=True,
           name="Anita Rani Sharma", e164="+919876543213"),
    # Said no to marketing; typed in lower case with an honorific.
    Person("dr. meera", "iyer", [("Mobile", "+91 98765 43214")], consent=False,
           name="Dr. Meera Iyer", e164="+919876543214"),
    # The salon blocked this customer (who had said yes).
    Person("Karan", "Mehta", [("Mobile", "9876543215")], consent=True, blocked=True,
           name="Karan Mehta", e164="+919876543215"),
    # Only a landline: refused as one.
    Person("Suresh", "Rao", [("Home", "080 2345 6791")], name="Suresh Rao", error=NOT_MOBILE),
    # Consent left blank.
    Person("Neha", "Gupta", [("Mobile", "98765 43217")], name="Neha Gupta",
           e164="+919876543217"),
    # Two mobiles separated by a slash; said yes.
    Person("Pooja", "Das", [("Mobile", "98765 43219 / 98765 43220")], consent=True,
           name="Pooja Das", e164="+919876543219"),
    # Said no.
    Person("Vikram", "Singh", [("Mobile", "98765 43218")], consent=False,
           name="Vikram Singh", e164="+919876543218"),
]
# Contact apps also hold businesses: a contact with only an organisation name.
ORGANISATION = Person("", "", [("Work", "98765 43216")], org="Glow Studio",
                      name="Glow Studio", e164="+919876543216", from_org=True)


def expected(person: Person, has_consent: bool) -> Expected:
    if person.e164 is None:
        return Expected(person.name, None, "", "unknown", None, error=person.error)
    if not has_consent or (person.consent is None and not person.blocked):
        return Expected(person.name, person.e164, "pending", "unknown", None,
                        from_org=person.from_org)
    if person.consent is False:
        return Expected(person.name, person.e164, "opted_out", "no", "refused")
    if person.blocked:
        return Expected(person.name, person.e164, "opted_out", "no", "blocked")
    return Expected(person.name, person.e164, "pending", "yes", None)


def _csv(headers: list[str], rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headers])
    return out.getvalue().encode("utf-8-sig")


def _cell(text: str, separator: str) -> str:
    return text.replace(SEP, separator)


def _flag(value: bool | None, yes: str, no: str) -> str:
    return "" if value is None else (yes if value else no)


# -- contact apps --------------------------------------------------------------------------------

CONTACTS = [*PEOPLE, ORGANISATION]


def _contacts(slug: str, file_name: str, headers: list[str],
              build: Callable[[Person], dict[str, str]]) -> ExportFile:
    """A contact app's export: no consent columns, so everyone's consent is unknown."""
    return ExportFile(slug, file_name, _csv(headers, [build(p) for p in CONTACTS]),
                      [expected(p, False) for p in CONTACTS])

GOOGLE_HEADERS = [
    "First Name", "Middle Name", "Last Name", "Phonetic First Name", "Phonetic Middle Name",
    "Phonetic Last Name", "Name Prefix", "Name Suffix", "Nickname", "File As",
    "Organization Name", "Organization Title", "Organization Department", "Birthday", "Notes",
    "Photo", "Labels", "E-mail 1 - Label", "E-mail 1 - Value", "Phone 1 - Label",
    "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value", "Phone 3 - Label",
    "Phone 3 - Value", "Address 1 - Label", "Address 1 - Formatted", "Address 1 - Street",
    "Address 1 - City", "Address 1 - PO Box", "Address 1 - Region", "Address 1 - Postal Code",
    "Address 1 - Country", "Address 1 - Extended Address", "Website 1 - Label",
    "Website 1 - Value",
]  # fmt: skip


def google_contacts() -> ExportFile:
    def build(person: Person) -> dict[str, str]:
        row = {"First Name": person.first, "Last Name": person.last,
               "Organization Name": person.org, "Labels": "* myContacts",
               "E-mail 1 - Label": "* Home" if person.email else "",
               "E-mail 1 - Value": person.email, "Address 1 - Country": "India",
               "File As": person.org or f"{person.first} {person.last}".strip()}
        for n, (label, number) in enumerate(person.phones, start=1):
            row[f"Phone {n} - Label"] = label
            row[f"Phone {n} - Value"] = _cell(number, " ::: ")
        return row
    return _contacts("google-contacts", "contacts.csv", GOOGLE_HEADERS, build)


GOOGLE_LEGACY_HEADERS = [
    "Name", "Given Name", "Additional Name", "Family Name", "Yomi Name", "Given Name Yomi",
    "Additional Name Yomi", "Family Name Yomi", "Name Prefix", "Name Suffix", "Initials",
    "Nickname", "Short Name", "Maiden Name", "Birthday", "Gender", "Location",
    "Billing Information", "Directory Server", "Mileage", "Occupation", "Hobby", "Sensitivity",
    "Priority", "Subject", "Notes", "Language", "Photo", "Group Membership", "E-mail 1 - Type",
    "E-mail 1 - Value", "Phone 1 - Type", "Phone 1 - Value", "Phone 2 - Type", "Phone 2 - Value",
    "Organization 1 - Type", "Organization 1 - Name", "Organization 1 - Yomi Name",
    "Organization 1 - Title", "Organization 1 - Department", "Organization 1 - Symbol",
    "Organization 1 - Location", "Organization 1 - Job Description",
]  # fmt: skip


def google_contacts_legacy() -> ExportFile:
    def build(person: Person) -> dict[str, str]:
        full = f"{person.first} {person.last}".strip()
        row = {"Name": full, "Given Name": person.first, "Family Name": person.last,
               "Group Membership": "* My Contacts", "E-mail 1 - Type": "* Home",
               "E-mail 1 - Value": person.email, "Organization 1 - Name": person.org,
               "Organization 1 - Type": "Work" if person.org else ""}
        for n, (label, number) in enumerate(person.phones, start=1):
            row[f"Phone {n} - Type"] = ("* " if n == 1 else "") + label
            row[f"Phone {n} - Value"] = _cell(number, " ::: ")
        return row
    return _contacts("google-contacts-legacy", "google.csv", GOOGLE_LEGACY_HEADERS, build)


OUTLOOK_HEADERS = [
    "First Name", "Middle Name", "Last Name", "Title", "Suffix", "Nickname", "Given Yomi",
    "Surname Yomi", "E-mail Address", "E-mail 2 Address", "E-mail 3 Address", "Home Phone",
    "Home Phone 2", "Business Phone", "Business Phone 2", "Mobile Phone", "Car Phone",
    "Other Phone", "Primary Phone", "Pager", "Business Fax", "Home Fax", "Other Fax",
    "Company Main Phone", "Callback", "Radio Phone", "Telex", "TTY/TDD Phone", "IMAddress",
    "Job Title", "Department", "Company", "Office Location", "Manager's Name",
    "Assistant's Name", "Assistant's Phone", "Company Yomi", "Business Street",
    "Business City", "Business State", "Business Postal Code", "Business Country/Region",
    "Home Street", "Home City", "Home State", "Home Postal Code", "Home Country/Region",
    "Other Street", "Other City", "Other State", "Other Postal Code", "Other Country/Region",
    "Personal Web Page", "Spouse", "Schools", "Hobby", "Location", "Web Page", "Birthday",
    "Anniversary", "Notes",
]  # fmt: skip
_OUTLOOK_COLUMN = {"Mobile": "Mobile Phone", "Home": "Home Phone", "Work": "Business Phone"}


def outlook() -> ExportFile:
    def build(person: Person) -> dict[str, str]:
        row = {"First Name": person.first, "Last Name": person.last, "Company": person.org,
               "E-mail Address": person.email, "Home Country/Region": "India",
               # Someone else's number: never the customer's.
               "Assistant's Phone": "98000 00001" if person.org else ""}
        for label, number in person.phones:
            row[_OUTLOOK_COLUMN[label]] = _cell(number, "; ")
        return row
    return _contacts("outlook", "outlook.csv", OUTLOOK_HEADERS, build)


IPHONE_HEADERS = [
    "First name", "Last name", "Middle name", "Nickname", "Company", "Job title", "Mobile",
    "iPhone", "Home", "Work", "Main", "Home fax", "Work fax", "Pager", "Other",
    "Email (home)", "Email (work)", "Birthday", "Notes",
]  # fmt: skip


def iphone_contacts() -> ExportFile:
    def build(person: Person) -> dict[str, str]:
        row = {"First name": person.first, "Last name": person.last, "Company": person.org,
               "Email (home)": person.email}
        for label, number in person.phones:
            row[label] = _cell(number, "\n")
        return row
    return _contacts("phone-contacts", "iphone-contacts.csv", IPHONE_HEADERS, build)


ANDROID_HEADERS = [
    "Display Name", "Given Name", "Middle Name", "Family Name", "Nickname", "Organization",
    "Title", "Mobile Phone", "Home Phone", "Work Phone", "Other Phone", "E-mail 1",
    "E-mail 2", "Birthday", "Note",
]  # fmt: skip
_ANDROID_COLUMN = {"Mobile": "Mobile Phone", "Home": "Home Phone", "Work": "Work Phone"}


def android_contacts() -> ExportFile:
    def build(person: Person) -> dict[str, str]:
        display = f"{person.first} {person.last}".strip() or person.org
        row = {"Display Name": "" if person.org else display, "Given Name": person.first,
               "Family Name": person.last, "Organization": person.org,
               "E-mail 1": person.email}
        for label, number in person.phones:
            row[_ANDROID_COLUMN[label]] = _cell(number, ", ")
        return row
    return _contacts("phone-contacts", "android-contacts.csv", ANDROID_HEADERS, build)


# -- salon software ------------------------------------------------------------------------------

FRESHA_HEADERS = [
    "Client ID", "First Name", "Last Name", "Full Name", "Blocked", "Block Reason", "Gender",
    "Mobile Number", "Telephone", "Email", "Accepts Marketing", "Accepts SMS Marketing",
    "Address", "Apartment / Suite", "Area", "City", "State", "Post Code", "Date of Birth",
    "Added", "Note", "Referral Source",
]  # fmt: skip


def _suite_rows(build: Callable[[int, Person], dict[str, str]]) -> list[dict[str, str]]:
    return [build(i, person) for i, person in enumerate(PEOPLE, start=1)]


def _suite_expected(blocked_reason: str = "blocked") -> list[Expected]:
    """What the salon-software rows import as; `blocked_reason` is the reason the export's
    do-not-message column records."""
    rows = [expected(p, True) for p in PEOPLE]
    return [r if r.reason != "blocked" else Expected(r.name, r.e164, r.status, r.consent,
                                                     blocked_reason) for r in rows]


def _split(person: Person) -> tuple[str, str]:
    """(mobile cell, other cell) for software with one mobile and one landline column."""
    mobile = next((n for label, n in person.phones if label == "Mobile"), "")
    other = next((n for label, n in person.phones if label != "Mobile"), "")
    return mobile, other


def fresha() -> ExportFile:
    def build(i: int, person: Person) -> dict[str, str]:
        mobile, other = _split(person)
        return {"Client ID": str(4000 + i), "First Name": person.first,
                "Last Name": person.last, "Full Name": f"{person.first} {person.last}",
                "Blocked": "Yes" if person.blocked else "No",
                "Block Reason": "No-shows" if person.blocked else "",
                "Mobile Number": _cell(mobile, ";"), "Telephone": other, "Email": person.email,
                "Accepts Marketing": _flag(person.consent, "Yes", "No"),
                "Accepts SMS Marketing": _flag(person.consent, "Yes", "No"),
                "City": "Bengaluru", "Added": "2023-04-01", "Referral Source": "Walk-in"}
    return ExportFile("fresha", "fresha-clients.csv", _csv(FRESHA_HEADERS, _suite_rows(build)),
                      _suite_expected(), has_consent=True)


VAGARO_HEADERS = [
    "First Name", "Last Name", "Email", "Cell Phone", "Day Phone", "Night Phone", "Address",
    "City", "State", "Zip", "Birthday", "Gender", "Customer Since", "Last Visit",
    "Email Promotions", "Text Message Promotions", "Blocked Customer", "Tags",
]  # fmt: skip


def vagaro() -> ExportFile:
    def build(i: int, person: Person) -> dict[str, str]:
        mobile, other = _split(person)
        return {"First Name": person.first, "Last Name": person.last, "Email": person.email,
                "Cell Phone": _cell(mobile, ", "), "Night Phone": other,
                "Email Promotions": "True",
                "Text Message Promotions": _flag(person.consent, "True", "False"),
                "Blocked Customer": "True" if person.blocked else "False",
                "Customer Since": "01/04/2023"}
    return ExportFile("vagaro", "vagaro-customers.csv",
                      _csv(VAGARO_HEADERS, _suite_rows(build)),
                      _suite_expected(), has_consent=True)


ZENOTI_HEADERS = [
    "Guest Code", "First Name", "Last Name", "Gender", "Mobile Phone", "Home Phone",
    "Work Phone", "Email", "Date Of Birth", "Center", "Created Date",
    "Receive Transactional SMS", "Receive Marketing SMS", "Receive Marketing Email", "DND",
]  # fmt: skip


def zenoti() -> ExportFile:
    def build(i: int, person: Person) -> dict[str, str]:
        mobile, other = _split(person)
        return {"Guest Code": f"G{1000 + i}", "First Name": person.first,
                "Last Name": person.last, "Mobile Phone": _cell(mobile, "; "),
                "Home Phone": other, "Email": person.email, "Center": "Indiranagar",
                "Receive Transactional SMS": "1",
                "Receive Marketing SMS": _flag(person.consent, "1", "0"),
                "Receive Marketing Email": "0", "DND": "1" if person.blocked else "0"}
    # Zenoti's DND is the customer's do-not-disturb: an unsubscription, not a block.
    return ExportFile("zenoti", "zenoti-guests.csv", _csv(ZENOTI_HEADERS, _suite_rows(build)),
                      _suite_expected(blocked_reason="unsubscribed"), has_consent=True)


PHOREST_HEADERS = [
    "First Name", "Last Name", "Mobile", "Landline", "Email", "Gender", "Date of Birth",
    "SMS Marketing Consent", "Email Marketing Consent", "Client Since", "Branch",
    "Client Category", "Banned", "Notes",
]  # fmt: skip


def phorest() -> ExportFile:
    def build(i: int, person: Person) -> dict[str, str]:
        mobile, other = _split(person)
        return {"First Name": person.first, "Last Name": person.last,
                "Mobile": _cell(mobile, "; "), "Landline": other, "Email": person.email,
                "SMS Marketing Consent": _flag(person.consent, "Y", "N"),
                "Email Marketing Consent": "Y", "Client Since": "2023-04-01",
                "Branch": "Koramangala", "Banned": "Y" if person.blocked else "N"}
    return ExportFile("phorest", "phorest-clients.csv",
                      _csv(PHOREST_HEADERS, _suite_rows(build)), _suite_expected(),
                      has_consent=True)


SALONIST_HEADERS = [
    "Name", "Mobile No", "Alternate Mobile No", "Email", "Gender", "DOB", "Anniversary",
    "Membership", "Wallet Balance", "Marketing Consent", "DND", "Last Visit",
]  # fmt: skip


def salonist() -> ExportFile:
    def build(i: int, person: Person) -> dict[str, str]:
        mobile, other = _split(person)
        return {"Name": f"{person.first} {person.last}", "Mobile No": _cell(mobile, " / "),
                "Alternate Mobile No": other, "Email": person.email, "Membership": "Silver",
                "Wallet Balance": "0",
                # Indian salon software: Hindi transliterations as typed by the staff.
                "Marketing Consent": _flag(person.consent, "haan", "nahi"),
                "DND": "haan" if person.blocked else ""}
    return ExportFile("salonist", "salonist.csv", _csv(SALONIST_HEADERS, _suite_rows(build)),
                      _suite_expected(blocked_reason="unsubscribed"), has_consent=True)


SHAPES: dict[str, Callable[[], ExportFile]] = {
    "google-contacts": google_contacts,
    "google-contacts-legacy": google_contacts_legacy,
    "outlook": outlook,
    "iphone": iphone_contacts,
    "android": android_contacts,
    "fresha": fresha,
    "vagaro": vagaro,
    "zenoti": zenoti,
    "phorest": phorest,
    "salonist": salonist,
}
