"""The analytics export (GET /analytics/export.xlsx): the dashboard's numbers and every imported
customer of the salon as one Excel workbook.

Memory stays flat whatever the salon's size: the numbers come from analytics.report() (small),
the customers from a server-side cursor PAGE_ROWS at a time, and XlsxWriter runs in
constant_memory mode, flushing each row to a temporary file as it is written. All workbook
work (decrypting phones, writing rows, zipping the file) happens in worker threads, one page at
a time, never on the event loop. The workbook lives in a private temporary folder that export()
removes when its block ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, ParamSpec, TypeVar

import xlsxwriter

from onboardd.db import analytics as analytics_db
from onboardd.db import analytics_export as db
from onboardd.db import imports as imports_db
from onboardd.domain.phones import mask_phone
from onboardd.domain.sheets import (
    cell_text,
    export_filename,
    local_time,
    rupees,
    unique_sheet_names,
)
from onboardd.runtime import Services
from onboardd.services import analytics
from onboardd.services.analytics import Report

P = ParamSpec("P")
T = TypeVar("T")

XLSX_CONTENT_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PiiMode = Literal["masked", "full"]
PII_MODES: Final[tuple[PiiMode, ...]] = ("masked", "full")
PAGE_ROWS: Final = 500  # customers fetched, decrypted and written per worker-thread hop
READ_CHUNK: Final = 256 * 1024

SUMMARY, FUNNEL, DAILY, CAMPAIGNS, CUSTOMERS = unique_sheet_names(
    ["Summary", "Funnel", "Daily", "Campaigns", "Customers"])

Kind = Literal["count", "rate", "money", "days"]
# The Summary's rows: label, Kpis attribute, how the value is shown.
KPI_ROWS: Final[tuple[tuple[str, str, Kind], ...]] = (
    ("Total imported", "total_imported", "count"),
    ("Imported this week", "imported_this_week", "count"),
    ("Imported this month", "imported_this_month", "count"),
    ("Invites sent", "total_invites_sent", "count"),
    ("Invites delivered", "invites_delivered", "count"),
    ("Delivery rate", "delivery_rate", "rate"),
    ("Registered from import", "registered_from_import", "count"),
    ("Conversion rate", "conversion_rate", "rate"),
    ("Offers redeemed", "offers_redeemed", "count"),
    ("Redemption rate", "redemption_rate", "rate"),
    ("Total discount given (₹)", "total_discount_given", "money"),
    ("Average days to register", "avg_days_to_register", "days"),
    ("Average days to first booking", "avg_days_to_first_booking", "days"),
)
STAGE_LABELS: Final = {"imported": "Imported", "invited": "Invited", "delivered": "Delivered",
                       "registered": "Registered", "firstBooking": "First booking"}
# The series columns after the date: label, SeriesPoint attribute, kind.
SERIES_COLUMNS: Final[tuple[tuple[str, str, Kind], ...]] = (
    ("Imported", "imported", "count"),
    ("Invited", "invited", "count"),
    ("Delivered", "delivered", "count"),
    ("Registered", "registered", "count"),
    ("First bookings", "first_bookings", "count"),
    ("Offers redeemed", "redeemed", "count"),
    ("Discount given (₹)", "discount_given_in_paisa", "money"),
)
CHARTED_SERIES: Final = 5  # the line chart plots the first five counts
# Campaigns: label, CampaignComparison attribute, kind ("text", "time" or a number kind).
CAMPAIGN_COLUMNS: Final[tuple[tuple[str, str, str], ...]] = (
    ("Campaign id", "campaign_id", "text"),
    ("Name", "name", "text"),
    ("Channel", "channel", "text"),
    ("Status", "status", "text"),
    ("Started at", "started_at", "time"),
    ("Target", "target", "count"),
    ("Sent", "sent", "count"),
    ("Delivered", "delivered", "count"),
    ("Delivery rate", "delivery_rate", "rate"),
    ("Read", "read", "count"),
    ("Failed", "failed", "count"),
    ("Skipped", "skipped", "count"),
    ("Registered", "registered", "count"),
    ("Conversion rate", "conversion_rate", "rate"),
    ("First bookings", "first_bookings", "count"),
    ("Offers redeemed", "redeemed", "count"),
    ("Discount given (₹)", "discount_given_in_paisa", "money"),
    ("Booking value (₹)", "booking_value_in_paisa", "money"),
)
CUSTOMER_HEADERS: Final = (
    "Name", "Phone", "Status", "Imported at", "Invited at", "Registered at", "Last campaign",
    "Offers redeemed", "Discount given (₹)", "First booking at")

_NUMBER_FORMATS: Final = {
    "count": "#,##0", "rate": "0.00%", "money": '"₹"#,##0.00', "days": "0.0",
    "date": "yyyy-mm-dd", "time": "yyyy-mm-dd hh:mm"}


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A finished workbook: where it is (until export()'s block ends), its download name, its
    size in bytes and how many customer rows it holds."""

    path: Path
    filename: str
    size: int
    rows: int


async def _off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """fn in a worker thread. When the caller is cancelled, the thread is still waited for, so
    nothing cleans up files the thread is writing."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller hears
        raise


@contextlib.asynccontextmanager
async def export(services: Services, salon_id: str, *, raw_from: str | None,
                 raw_to: str | None, pii: PiiMode, actor: str, request_id: str,
                 campaign_id: str | None = None) -> AsyncIterator[ExportFile]:
    """Build the workbook for the window (same from/to and campaign rules as
    analytics.report, which validates them) and yield it; the temporary folder goes when the
    block ends. With a campaign, the numbers are the campaign's and the Customers sheet holds
    the customers it targeted. The export is logged to pii_access_log with its row count and
    the customers it holds (the first MAX_LOGGED_CUSTOMERS named, the rest counted; action
    analytics_export_full when phones are in full)."""
    numbers = await analytics.report(services, salon_id, raw_from=raw_from, raw_to=raw_to,
                                     campaign_id=campaign_id)
    # Private (0700) and made here, on the loop: a cancellation cannot lose track of it.
    folder = Path(tempfile.mkdtemp(prefix="onboardd-export-"))
    try:
        path = folder / "export.xlsx"
        writer = await _off_loop(_Writer, path, folder, numbers, pii, services.cipher.decrypt)
        named: list[str] = []  # the first customers of the sheet, as many as an entry names
        async with analytics_db.reads(services.pool, "repeatable_read") as conn, \
                contextlib.aclosing(db.customer_pages(conn, salon_id, PAGE_ROWS,
                                                      campaign_id)) as pages:
            async for page in pages:
                named.extend(c.id for c in page[:imports_db.MAX_LOGGED_CUSTOMERS - len(named)])
                await _off_loop(writer.customers, page)
        size = await _off_loop(writer.close)
        await imports_db.log_pii_access(
            services.pool, actor=actor, salon_id=salon_id,
            action="analytics_export_full" if pii == "full" else "analytics_export",
            record_count=writer.rows,
            details={"from": numbers.range.from_.isoformat(),
                     "to": numbers.range.to.isoformat(), "pii": pii,
                     "campaignId": campaign_id},
            request_id=request_id, customer_ids=named, customers_shown=writer.rows)
        yield ExportFile(path, export_filename(numbers.range.from_, numbers.range.to), size,
                         writer.rows)
    finally:
        await _off_loop(shutil.rmtree, folder, ignore_errors=True)


async def chunks(out: ExportFile, size: int = READ_CHUNK) -> AsyncGenerator[bytes, None]:
    """The workbook's bytes, read off the event loop (use inside contextlib.aclosing, so the
    file is closed as soon as the caller stops)."""
    handle = await _off_loop(out.path.open, "rb")
    try:
        while chunk := await _off_loop(handle.read, size):
            yield chunk
    finally:
        await _off_loop(handle.close)


def _campaign_shown(numbers: Report) -> str:
    """Which campaign the workbook covers: its name, or every campaign."""
    if numbers.campaign_id is None:
        return "All campaigns"
    return next((c.name for c in numbers.campaigns if c.campaign_id == numbers.campaign_id),
                numbers.campaign_id)


class _Writer:
    """The workbook, written strictly row by row (constant_memory): the four small sheets when
    created, then the customers page by page, Customers last. Used from one thread at a time."""

    def __init__(self, path: Path, folder: Path, numbers: Report, pii: PiiMode,
                 decrypt: Callable[[str, str], str]) -> None:
        self.path = path
        self.book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False, "tmpdir": str(folder)})
        self.zone = numbers.range.timezone
        self.pii = pii
        self.decrypt = decrypt
        self.rows = 0
        self.header = self.book.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
        self.formats: dict[str, Any] = {k: self.book.add_format({"num_format": v})
                                        for k, v in _NUMBER_FORMATS.items()}
        self._summary(numbers)
        self._funnel(numbers)
        self._daily(numbers)
        self._campaigns(numbers)
        self.sheet = self._table(CUSTOMERS, [self._zoned(h) if h.endswith(" at") else h
                                             for h in CUSTOMER_HEADERS], 20)

    def _zoned(self, label: str) -> str:
        return f"{label} ({self.zone})"

    def _table(self, name: str, headers: list[str], width: int) -> Any:
        """A sheet starting with one frozen header row."""
        sheet = self.book.add_worksheet(name)
        sheet.set_column(0, len(headers) - 1, width)
        sheet.freeze_panes(1, 0)
        for col, text in enumerate(headers):
            sheet.write_string(0, col, text, self.header)
        return sheet

    def _value(self, sheet: Any, row: int, col: int, value: Any, kind: str) -> None:
        """One cell: text stays text (even '=...'), numbers and times are numbers."""
        if value is None:
            return
        if kind == "text":
            sheet.write_string(row, col, cell_text(str(value)))
        elif kind in ("time", "date"):
            stamp = local_time(value, self.zone) if kind == "time" else value
            sheet.write_datetime(row, col, stamp, self.formats[kind])
        else:
            number = rupees(value) if kind == "money" else value
            sheet.write_number(row, col, number, self.formats[kind])

    def _summary(self, numbers: Report) -> None:
        sheet = self.book.add_worksheet(SUMMARY)
        sheet.set_column(0, 0, 32)
        sheet.set_column(1, 1, 18)
        now = datetime.now(UTC)
        top: list[tuple[str, Any, str]] = [
            ("From", numbers.range.from_, "date"), ("To", numbers.range.to, "date"),
            ("Timezone", self.zone, "text"), ("Series bucket", numbers.series.bucket, "text"),
            (self._zoned("Generated at"), now, "time"),
            ("Campaign", _campaign_shown(numbers), "text")]
        for row, (label, value, kind) in enumerate(top):
            sheet.write_string(row, 0, label, self.header)
            self._value(sheet, row, 1, value, kind)
        first = len(top) + 1
        sheet.write_string(first, 0, "Metric", self.header)
        sheet.write_string(first, 1, "Value", self.header)
        for i, (label, attr, kind) in enumerate(KPI_ROWS, start=first + 1):
            sheet.write_string(i, 0, label)
            self._value(sheet, i, 1, getattr(numbers.kpis, attr), kind)

    def _funnel(self, numbers: Report) -> None:
        sheet = self._table(FUNNEL, ["Stage", "Customers", "Rate from previous",
                                     "Rate from imported"], 20)
        for row, stage in enumerate(numbers.funnel, start=1):
            sheet.write_string(row, 0, STAGE_LABELS.get(stage.stage, stage.stage))
            self._value(sheet, row, 1, stage.count, "count")
            self._value(sheet, row, 2, stage.rate_from_previous, "rate")
            self._value(sheet, row, 3, stage.rate_from_imported, "rate")
        last = len(numbers.funnel)
        chart = self.book.add_chart({"type": "bar"})
        chart.add_series({"name": "Customers", "categories": [FUNNEL, 1, 0, last, 0],
                          "values": [FUNNEL, 1, 1, last, 1], "data_labels": {"value": True}})
        chart.set_title({"name": "Onboarding funnel"})
        chart.set_legend({"none": True})
        # A bar chart's category axis is its y axis: reversed, the funnel reads top-down, and
        # crossing at the last category keeps the value axis at the bottom.
        chart.set_y_axis({"reverse": True, "crossing": "max"})
        sheet.insert_chart(1, 5, chart)

    def _daily(self, numbers: Report) -> None:
        first = "Day" if numbers.series.bucket == "day" else "Week starting (Monday)"
        sheet = self._table(DAILY, [first, *(label for label, _, _ in SERIES_COLUMNS)], 14)
        for row, point in enumerate(numbers.series.points, start=1):
            self._value(sheet, row, 0, point.date, "date")
            for col, (_, attr, kind) in enumerate(SERIES_COLUMNS, start=1):
                self._value(sheet, row, col, getattr(point, attr), kind)
        last = len(numbers.series.points)
        chart = self.book.add_chart({"type": "line"})
        for col in range(1, CHARTED_SERIES + 1):
            chart.add_series({"name": [DAILY, 0, col], "categories": [DAILY, 1, 0, last, 0],
                              "values": [DAILY, 1, col, last, col]})
        chart.set_title({"name": f"Onboarding by {numbers.series.bucket}"})
        chart.set_size({"width": 760, "height": 360})
        sheet.insert_chart(1, len(SERIES_COLUMNS) + 2, chart)

    def _campaigns(self, numbers: Report) -> None:
        headers = [self._zoned(label) if kind == "time" else label
                   for label, _, kind in CAMPAIGN_COLUMNS]
        sheet = self._table(CAMPAIGNS, headers, 14)
        for row, campaign in enumerate(numbers.campaigns, start=1):
            for col, (_, attr, kind) in enumerate(CAMPAIGN_COLUMNS):
                self._value(sheet, row, col, getattr(campaign, attr), kind)

    def customers(self, page: list[db.ExportCustomer]) -> None:
        """Append one page of customers (phones decrypted here, masked unless pii is full)."""
        sheet, value = self.sheet, self._value
        for c in page:
            self.rows += 1
            row = self.rows
            phone = self.decrypt(c.normalized_phone_enc, "phone")
            value(sheet, row, 0, c.customer_name, "text")
            value(sheet, row, 1, phone if self.pii == "full" else mask_phone(phone), "text")
            value(sheet, row, 2, c.status, "text")
            value(sheet, row, 3, c.imported_at, "time")
            value(sheet, row, 4, c.invited_at, "time")
            value(sheet, row, 5, c.registered_at, "time")
            value(sheet, row, 6, c.last_campaign_name, "text")
            value(sheet, row, 7, c.offers, "text")
            value(sheet, row, 8, c.discount, "money")
            value(sheet, row, 9, c.first_booking_at, "time")

    def close(self) -> int:
        """Finish the file (assembles and zips the sheets); its size in bytes."""
        self.book.close()
        return self.path.stat().st_size
