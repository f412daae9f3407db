"""What the dashboard shows, built from an analytics report with no I/O: the KPI tiles with
their rates in words, the funnel bars and their links, the campaign comparison bars, the chart
data handed to dashboard.js, and the date presets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from onboardd.domain.analytics import DEFAULT_DAYS
from onboardd.services.analytics import CampaignComparison, Kpis, Report, stage_audience
from onboardd.web.admin.formats import number, percent, rupees

DASHBOARD: Final = "/admin/dashboard"
BUILDER: Final = "/admin/campaigns/new"
BAR_SCALE: Final = 1000  # the SVG bars' viewBox width
CURVE_MILESTONES: Final = (0, 1, 3, 7, 14, 30)  # the curve table's days
CHARTED_CURVES: Final = 8  # the newest campaigns drawn on the curve chart (all in its table)

STAGE_NAMES: Final = {"imported": "Imported", "invited": "Invited", "delivered": "Delivered",
                      "registered": "Registered", "firstBooking": "First booking"}
# Who a stage's page lists: at the stage and not at the next one.
STAGE_HERE: Final = {
    "imported": "Imported, not invited yet",
    "invited": "Invited, message not delivered",
    "delivered": "Delivered, not registered",
    "registered": "Registered, no booking yet",
    "firstBooking": "Booked after registering",
}


def day_text(day: date) -> str:
    """1 Dec 2026."""
    return f"{day.day} {day:%b %Y}"


@dataclass(frozen=True, slots=True)
class Filters:
    """The dashboard's query: from/to as typed (None: the default) and a campaign id."""

    from_: str | None = None
    to: str | None = None
    campaign: str | None = None

    @classmethod
    def of(cls, query: Any) -> Filters:
        def text(name: str) -> str | None:
            value = query.get(name, "")
            return value.strip() or None if isinstance(value, str) else None
        return cls(text("from"), text("to"), text("campaign"))

    def params(self, **extra: str | int | None) -> dict[str, str]:
        values = {"from": self.from_, "to": self.to, "campaign": self.campaign, **extra}
        return {k: str(v) for k, v in values.items() if v is not None and v != ""}

    def as_query(self, **extra: str | int | None) -> str:
        """The query string ("?from=...&to=...") carrying these filters, or ""."""
        params = self.params(**extra)
        return "?" + urlencode(params) if params else ""


def settled(report: Report) -> Filters:
    """The filters as the report read them (the defaults filled in)."""
    return Filters(report.range.from_.isoformat(), report.range.to.isoformat(),
                   report.campaign_id)


def builder_href(stage: str, campaign: str | None) -> str | None:
    """The campaign builder with this stage's audience, when its people can be invited again."""
    if stage_audience(stage, campaign) is None:
        return None
    params = {"stage": stage} | ({"campaign": campaign} if campaign else {})
    return f"{BUILDER}?{urlencode(params)}"


def stage_href(stage: str, filters: Filters, page: int | None = None) -> str:
    return f"{DASHBOARD}/stages/{stage}{filters.as_query(page=page)}"


def export_href(filters: Filters, pii: str | None = None) -> str:
    """The workbook of what the dashboard shows: its range, and its campaign when one is
    chosen (that campaign's numbers and the customers it targeted)."""
    return f"{DASHBOARD}/export.xlsx{filters.as_query(pii=pii)}"


# -- tiles --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tile:
    key: str  # the API's KPI (or funnel stage) it shows
    label: str
    value: str
    rate: str


def _days(key: str, label: str, value: float | None, between: str, nobody: str) -> Tile:
    if value is None:
        return Tile(key, label, "–", nobody)
    return Tile(key, label, f"{number(value)} days", f"on average, {between}")


def tiles(report: Report) -> tuple[list[Tile], list[Tile]]:
    """(the tiles counting events in the range, the tiles of the state now)."""
    k: Kpis = report.kpis
    stages = {s.stage: s for s in report.funnel}
    to = day_text(report.range.to)
    windowed = [
        Tile("totalInvitesSent", "Invites sent", number(k.total_invites_sent),
             f"{percent(k.delivery_rate)} of them delivered"),
        Tile("invitesDelivered", "Delivered", number(k.invites_delivered),
             f"{percent(k.delivery_rate)} of the {number(k.total_invites_sent)} invites sent"),
        Tile("registeredFromImport", "Registered", number(k.registered_from_import),
             f"{percent(k.conversion_rate)} of the customers imported by {to}"),
        Tile("offersRedeemed", "Offers redeemed", number(k.offers_redeemed),
             f"{percent(k.redemption_rate)} of those who registered in these dates redeemed "
             "their offer"),
        Tile("totalDiscountGiven", "Discount given", rupees(k.total_discount_given),
             f"on {number(k.offers_redeemed)} redeemed offers"),
    ]
    now = [
        Tile("totalImported", "Imported", number(k.total_imported),
             f"{number(k.imported_this_week)} this week, {number(k.imported_this_month)} "
             "this month"),
        Tile("invited", "Invited", number(stages["invited"].count),
             f"{percent(stages['invited'].rate_from_imported)} of imported customers"),
        Tile("firstBooking", "First booking", number(stages["firstBooking"].count),
             f"{percent(stages['firstBooking'].rate_from_previous)} of registered customers "
             "have booked"),
        _days("avgDaysToRegister", "Days to register", k.avg_days_to_register,
              "from invite to registration", "nobody has registered after an invite yet"),
        _days("avgDaysToFirstBooking", "Days to first booking", k.avg_days_to_first_booking,
              "from registration to first booking", "nobody has booked after registering yet"),
    ]
    return windowed, now


# -- bars ---------------------------------------------------------------------------------------

def bar_width(part: float, whole: float) -> int:
    """The width of a bar in the viewBox (a visible sliver for anything above zero)."""
    if whole <= 0 or part <= 0:
        return 0
    return max(4, round(BAR_SCALE * min(part / whole, 1.0)))


@dataclass(frozen=True, slots=True)
class FunnelBar:
    stage: str
    name: str
    here: str  # who the stage's page lists
    count: int
    stopped: int  # at this stage and not at the next: the people the stage's page lists
    rate_from_previous: float
    rate_from_imported: float
    width: int
    aria: str
    href: str
    invite_href: str | None


def funnel(report: Report, filters: Filters) -> list[FunnelBar]:
    """The funnel's bars, widths relative to the imported customers."""
    stages = report.funnel
    top = stages[0].count if stages else 0
    bars = []
    for i, s in enumerate(stages):
        following = stages[i + 1].count if i + 1 < len(stages) else 0
        name = STAGE_NAMES.get(s.stage, s.stage)
        aria = (f"{name}: {number(s.count)} customers, {percent(s.rate_from_imported)} of "
                f"imported")
        if i:
            aria += f", {percent(s.rate_from_previous)} of the previous stage"
        bars.append(FunnelBar(
            stage=s.stage, name=name, here=STAGE_HERE.get(s.stage, name), count=s.count,
            stopped=s.count - following, rate_from_previous=s.rate_from_previous,
            rate_from_imported=s.rate_from_imported, width=bar_width(s.count, top), aria=aria,
            href=stage_href(s.stage, filters),
            invite_href=builder_href(s.stage, filters.campaign)))
    return bars


@dataclass(frozen=True, slots=True)
class CampaignRow:
    c: CampaignComparison
    delivery_width: int
    conversion_width: int
    aria: str
    filter_href: str
    page_href: str


def comparison(report: Report, filters: Filters) -> list[CampaignRow]:
    """The campaigns started in the range, newest first, with their rate bars."""
    rows = []
    for c in report.campaigns:
        aria = (f"{c.name}: {percent(c.delivery_rate)} of {number(c.sent)} messages delivered, "
                f"{percent(c.conversion_rate)} of {number(c.target)} customers registered")
        rows.append(CampaignRow(
            c, bar_width(c.delivery_rate, 1.0), bar_width(c.conversion_rate, 1.0), aria,
            f"{DASHBOARD}{Filters(filters.from_, filters.to, c.campaign_id).as_query()}",
            f"/admin/campaigns/{c.campaign_id}"))
    return rows


def _with_rate(count: int, rate: float) -> str:
    return f"{number(count)} ({percent(rate)})"


# The comparison table's rows (campaigns side by side in columns): label, cell text.
COMPARED_ROWS: Final[tuple[tuple[str, Callable[[CampaignComparison], str]], ...]] = (
    ("Status", lambda c: c.status.replace("_", " ")),
    ("Target customers", lambda c: number(c.target)),
    ("Sent", lambda c: number(c.sent)),
    ("Delivered (share of sent)", lambda c: _with_rate(c.delivered, c.delivery_rate)),
    ("Read", lambda c: number(c.read)),
    ("Failed", lambda c: number(c.failed)),
    ("Skipped", lambda c: number(c.skipped)),
    ("Registered (share of target)", lambda c: _with_rate(c.registered, c.conversion_rate)),
    ("First bookings", lambda c: number(c.first_bookings)),
    ("Offers redeemed", lambda c: number(c.redeemed)),
    ("Discount given", lambda c: rupees(c.discount_given_in_paisa)),
    ("Booking value", lambda c: rupees(c.booking_value_in_paisa)),
)


def comparison_table(rows: list[CampaignRow]) -> list[tuple[str, list[str]]]:
    """The comparison as table rows: one per figure, one cell per campaign."""
    return [(label, [cell(r.c) for r in rows]) for label, cell in COMPARED_ROWS]


# -- charts -------------------------------------------------------------------------------------

def _epoch(day: date) -> int:
    return int(datetime.combine(day, time(0), UTC).timestamp())


@dataclass(frozen=True, slots=True)
class CurveRow:
    name: str
    delivered: int
    shares: list[str]  # at CURVE_MILESTONES


def curve_rows(report: Report) -> list[CurveRow]:
    rows = []
    for curve in report.conversion_curve:
        by_day = {p.day: p for p in curve.points}
        rows.append(CurveRow(curve.name, curve.delivered, [
            f"{percent(by_day[d].share)} ({number(by_day[d].registered)})" if d in by_day
            else "–" for d in CURVE_MILESTONES]))
    return rows


def chart_data(report: Report) -> dict[str, Any]:
    """What dashboard.js plots (read from a JSON data block: the CSP runs no inline script)."""
    points = report.series.points
    return {
        "bucket": report.series.bucket,
        "x": [_epoch(p.date) for p in points],
        "messages": [
            {"label": "Invites sent", "values": [p.invited for p in points]},
            {"label": "Delivered", "values": [p.delivered for p in points]},
        ],
        "people": [
            {"label": "Registered", "values": [p.registered for p in points]},
            {"label": "First bookings", "values": [p.first_bookings for p in points]},
        ],
        "curve": {
            "x": list(range(CURVE_MILESTONES[-1] + 1)),
            "lines": [{"label": c.name,
                       "values": [round(p.share * 100, 2) for p in c.points]}
                      for c in report.conversion_curve[:CHARTED_CURVES]],
        },
    }


# -- the date range -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Preset:
    label: str
    href: str
    current: bool


def presets(today: date, report: Report | None, campaign: str | None) -> list[Preset]:
    """Ranges ending today (and this month), keeping the campaign filter."""
    ranges = [("Last 7 days", today - timedelta(days=6)),
              ("Last 30 days", today - timedelta(days=29)),
              (f"Last {DEFAULT_DAYS} days", today - timedelta(days=DEFAULT_DAYS - 1)),
              ("This month", today.replace(day=1)),
              ("Last 12 months", today - timedelta(days=364))]
    shown = (report.range.from_, report.range.to) if report else None
    return [Preset(label, DASHBOARD + Filters(first.isoformat(), today.isoformat(),
                                              campaign).as_query(),
                   shown == (first, today))
            for label, first in ranges]
