"""A salon's own fields, checked before one is created (pure: no I/O)."""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import phonenumbers

MAX_NAME = 120
MAX_LINK = 500  # salons.app_download_link is varchar(500)


class SalonFields(msgspec.Struct, frozen=True):
    """A new salon, validated."""

    name: str
    country: str
    timezone: str
    app_download_link: str | None


class SalonFieldError(ValueError):
    """One field is wrong; the message names it and the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise SalonFieldError("name", "must not be empty")
    if len(name) > MAX_NAME:
        raise SalonFieldError("name", f"is {len(name)} characters; at most {MAX_NAME} are allowed")
    return name


def _country(raw: str) -> str:
    country = raw.strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise SalonFieldError("country", f"unknown country code '{raw}': use a two-letter "
                              "ISO 3166 code such as IN, AE or GB")
    return country


def _timezone(raw: str) -> str:
    zone = raw.strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SalonFieldError("timezone", f"unknown timezone '{raw}': use an IANA name such "
                              "as Asia/Kolkata or Europe/London") from None
    return zone


def _link(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    link = raw.strip()
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SalonFieldError("app-link", f"'{raw}' is not an http(s) URL: give the full link, "
                              "such as https://app.example.com/download")
    if len(link) > MAX_LINK:
        raise SalonFieldError("app-link", f"is {len(link)} characters; at most {MAX_LINK}")
    return link


def validate_salon(name: str, country: str = "IN", timezone: str = "Asia/Kolkata",
                   app_download_link: str | None = None) -> SalonFields:
    """The salon's fields normalised, or SalonFieldError naming the first wrong one."""
    return SalonFields(_name(name), _country(country), _timezone(timezone),
                       _link(app_download_link))


def salon_id_problem(salon_id: str) -> str | None:
    """Why a salon id taken from a URL can never name a salon (None when it can): ids are one
    path segment, so a '/' (also sent as %2F) or a control character never routes."""
    if not salon_id:
        return "is empty"
    if "/" in salon_id:
        return "must not contain '/' (nor %2F): a salon id is one path segment"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in salon_id):
        return "must not contain control characters"
    return None
