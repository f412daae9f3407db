"""The mobile app's check of a phone (spec §7.4): is this number a salon's imported customer?

It answers only about the caller's own number ([offers] check_requires_proof, default on): the
token's ``phone`` claim (the host app sets it after verifying the number by OTP) or the
user's stored ``users.phone``, each read as one E.164 number (onboardd.domain.matching). Any
other number gets exactly the answer of an unknown number, after the same work: the same
keyed hash and the same database lookups, of a hash no stored number has, so neither the
body, the status nor the time says whether the number is anyone's. The attempt is logged.
"""

from __future__ import annotations

from typing import Final

import msgspec

from onboardd.db import offers as db
from onboardd.domain.matching import NO_REGION, caller_region, user_number
from onboardd.domain.offers import Offer
from onboardd.domain.phones import PhoneError, mask_phone, normalize_phone
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services.errors import invalid_field

log = get_logger("offers")

# What a check without proof looks up instead of the number: the empty string's hash, which no
# imported customer has (their numbers are E.164), so the lookup costs what an unknown number's
# does and finds nothing.
_NOBODY: Final = ""


class CheckMatch(msgspec.Struct, frozen=True):
    """A salon where the number is an imported customer, with the offer they would get; the
    code and claim state only when the number is the caller's own."""

    salon_id: str
    salon_name: str
    offer: Offer | None
    offer_code: str | None
    claimed: bool


class CheckResult(msgspec.Struct, frozen=True):
    """The salons where a number is an imported customer, best match first."""

    own_number: bool
    matches: list[CheckMatch]


def _typed_number(raw: str, region: str) -> str:
    """The E.164 number the caller typed, read with their region; invalid naming the fix."""
    try:
        return normalize_phone(raw, region or NO_REGION)
    except PhoneError as exc:
        reason = exc.message
    if not region:
        raise invalid_field("phone", f"{reason}: send the number with its country code, such as "
                            "+919876543210")
    raise invalid_field("phone", f"{reason}: send a mobile number with its country code, such "
                        f"as +919876543210 (numbers of your region {region} may omit it)")


async def check_customer(services: Services, user_id: str, raw: str,
                         phone_claim: str | None = None) -> CheckResult:
    """Is this phone a salon's imported customer? Answered only about the caller's own number
    (see the module doc); the request middleware holds callers to their budget
    (onboardd.web.ratelimit, [ratelimit] check_per_min).

    phone_claim is the token's verified ``phone`` (E.164), when it has one."""
    if not raw:
        raise invalid_field("phone", "is required: pass ?phone= with the number the customer "
                            "entered, e.g. 9876543210 or +919876543210")
    default_region = services.cfg.offers.phone_region
    caller = await db.caller(services.pool, user_id)
    stored = user_number(caller.phone if caller else None, default_region)
    # The typed number is read with the caller's own region (their verified number's first),
    # never with a salon's.
    number = _typed_number(raw, caller_region(phone_claim or stored, default_region))
    own = number in (phone_claim, stored)
    answered = own or not services.cfg.offers.check_requires_proof
    found = await db.customers_by_hash(
        services.pool, services.cipher.phone_hash(number if answered else _NOBODY))
    offers = await db.get_offers(services.pool, [m.offer_id for m in found if m.offer_id])
    if not answered:
        log.warning("phone_check_without_proof", phone=mask_phone(number), user_id=user_id,
                    phone_claim=phone_claim is not None, stored_phone=stored is not None,
                    hint="answered as an unknown number: the token's phone claim and the "
                         "user's stored phone are not this number")
    return CheckResult(own_number=own, matches=[CheckMatch(
        salon_id=m.salon_id, salon_name=m.salon_name, offer=offers.get(m.offer_id or ""),
        offer_code=m.offer_code if own else None, claimed=own and m.linked_user_id == user_id,
    ) for m in found])
