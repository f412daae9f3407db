"""Turn a claimed message's row into what Twilio receives: From, To, Body or ContentSid."""

from __future__ import annotations

from typing import Final, Protocol

import msgspec

from onboardd.domain import templates

# Used when the salon has no app download link of its own.
DEFAULT_DOWNLOAD_LINK: Final = "https://app.salonhub.com/download"
# Senders used when none is configured: Twilio's WhatsApp sandbox number and its magic
# test "From" number; the simulator accepts any sender unless told otherwise.
DEFAULT_WHATSAPP_NUMBER: Final = "+14155238886"
DEFAULT_SMS_NUMBER: Final = "+15005550006"
WHATSAPP_PREFIX: Final = "whatsapp:"


class OfferWording(Protocol):
    """What an invitation says about an offer: a domain.offers.Offer, or the three columns a
    claimed message carries (OfferTerms)."""

    @property
    def discount_type(self) -> str: ...
    @property
    def discount_value(self) -> int: ...
    @property
    def validity_days(self) -> int: ...


class OfferTerms(msgspec.Struct, frozen=True):
    """The offer's wording as joined into a claimed message's row (not a second offer type:
    only the columns the invitation mentions)."""

    discount_type: str
    discount_value: int
    validity_days: int


class Outgoing(msgspec.Struct, frozen=True):
    """One create-message request."""

    from_: str
    to: str
    body: str | None
    content_sid: str | None
    content_variables: dict[str, str] | None


def senders(whatsapp_number: str, sms_number: str) -> tuple[str, str]:
    """(WhatsApp From address with its prefix, SMS From number), defaults when unset."""
    bare = whatsapp_number.strip().removeprefix(WHATSAPP_PREFIX) or DEFAULT_WHATSAPP_NUMBER
    return WHATSAPP_PREFIX + bare, sms_number.strip() or DEFAULT_SMS_NUMBER


def download_link(app_link: str | None, token: str) -> str:
    """The salon's link carrying the customer's token (?t= or &t=)."""
    base = (app_link or "").strip() or DEFAULT_DOWNLOAD_LINK
    return f"{base}{'&' if '?' in base else '?'}t={token}"


def context(
    *,
    customer_name: str,
    salon_name: str,
    offer: OfferWording | None,
    offer_code: str,
    app_link: str | None,
    token: str,
    default_expiry_days: int,
    whole_name: bool = False,
) -> templates.TemplateContext:
    """The template values for one customer."""
    amount = (templates.offer_amount_text(offer.discount_type, offer.discount_value)
              if offer is not None else "")
    days = offer.validity_days if offer is not None else default_expiry_days
    return templates.TemplateContext(
        customer_name=customer_name,
        salon_name=salon_name,
        offer_amount=amount,
        offer_code=offer_code,
        download_link=download_link(app_link, token),
        expiry_days=days,
        whole_name=whole_name,
    )


def outgoing(
    *,
    channel: str,
    sender: str,
    phone: str,
    template: str,
    content_sid: str | None,
    ctx: templates.TemplateContext,
) -> Outgoing:
    """The request for one message: WhatsApp with a ContentSid sends variables, else a Body."""
    if channel == "whatsapp":
        to = WHATSAPP_PREFIX + phone
        if content_sid:
            return Outgoing(sender, to, None, content_sid, templates.variables_for_contentsid(ctx))
        return Outgoing(sender, to, templates.render(template, ctx), None, None)
    return Outgoing(sender, phone, templates.render(template, ctx), None, None)
