"""`onboardd demo`: checks, the run, and the printed summary.

Exit codes: 0 done, 1 a step failed, 2 refused (bad arguments, a salon that already has
customers without --force, a token the daemon refuses, real Twilio configured), 3 no daemon
answers at the URL.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

import aiohttp
import asyncpg

from onboardd.auth import codec_from_config
from onboardd.config import Config
from onboardd.db.pool import create_pool, database_url
from onboardd.demo import host
from onboardd.demo.api import DaemonApi, DemoFailure
from onboardd.demo.flow import Demo, Outcome
from onboardd.demo.story import MIN_DAYS, Calendar
from onboardd.domain.money import format_rupees
from onboardd.logging import configure

ADMIN_SUBJECT: Final = "onboardd-demo"
ADMIN_TOKEN_TTL_S: Final = 3600
MIN_CUSTOMERS: Final = 20
MAX_DAYS: Final = 365
HTTP_TIMEOUT_S: Final = 30.0


def default_url(cfg: Config) -> str:
    """The daemon's address from [http] host and port."""
    host_name = cfg.http.host
    if ":" in host_name and not host_name.startswith("["):
        host_name = f"[{host_name}]"  # an IPv6 address
    return f"http://{host_name}:{cfg.http.port}"


def _check_args(cfg: Config, args: argparse.Namespace) -> None:
    if not MIN_DAYS <= args.days <= MAX_DAYS:
        raise DemoFailure(f"--days: give {MIN_DAYS} to {MAX_DAYS} days, got {args.days}", 2)
    if not MIN_CUSTOMERS <= args.customers <= cfg.import_.max_rows:
        raise DemoFailure(f"--customers: give {MIN_CUSTOMERS} to {cfg.import_.max_rows} "
                          f"([import] max_rows), got {args.customers}", 2)
    if not cfg.simulated_twilio:
        raise DemoFailure("Twilio credentials are configured: the demo invites made-up numbers, "
                          "so it runs only against a daemon on the built-in simulator (unset "
                          "TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)", 2)
    if not (cfg.embedded_db or cfg.simulator.enabled):
        raise DemoFailure("[simulator] enabled: the demo invites made-up numbers, so with an "
                          "external database it runs only against a daemon explicitly on the "
                          "simulator (set ONBOARDD_SIMULATOR_ENABLED=true)", 2)


async def run_demo(cfg: Config, args: argparse.Namespace) -> int:
    """Fill a salon with a believable history through a running daemon; the exit code."""
    if cfg.log.level == "info":
        # The summary is the output; info lines (the embedded server attaching) would bury it.
        configure("warning", cfg.log.format, sys.stderr)
    try:
        _check_args(cfg, args)
        url = (args.url or default_url(cfg)).rstrip("/")
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            # Before touching the database: with the embedded one, nothing is started in vain.
            await DaemonApi(http, url, "", "").ready()
            async with database_url(cfg) as db_url:
                pool = await create_pool(cfg, db_url, min_size=1, max_size=4)
                try:
                    outcome, salon = await _run(cfg, args, http, url, pool)
                finally:
                    await pool.close()
    except DemoFailure as exc:
        print(f"onboardd demo: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except host.SalonChoiceError as exc:
        print(f"onboardd demo: {exc}", file=sys.stderr)
        return 2
    print(summary(outcome, salon))
    return 0


async def _run(cfg: Config, args: argparse.Namespace, http: aiohttp.ClientSession, url: str,
               pool: asyncpg.Pool) -> tuple[Outcome, host.Salon]:
    """Choose the salon and the token, refuse a salon with customers, run the story."""
    salon = await host.find_salon(pool, args.salon)
    codec = codec_from_config(cfg)
    token = args.token or codec.encode(ADMIN_SUBJECT, "admin", [salon.id], ADMIN_TOKEN_TTL_S)
    api = DaemonApi(http, url, token, salon.id)
    existing = await api.customer_total()
    if existing and not args.force:
        raise DemoFailure(f"salon {salon.name!r} ({salon.id}) already has {existing} imported "
                          "customers; the demo fills an empty salon (pass --force to add "
                          "another history anyway)", 2)
    if await api.open_sending_window():
        print(f"onboardd demo: salon {salon.name!r} was outside its sending window (quiet "
              "hours); its window is now 00:00-24:00 so the demo's campaigns can send: PATCH "
              f"/api/salons/{salon.id}/settings to set it back", file=sys.stderr)
    # A second run on the same salon (--force) gets other people, not 100 % duplicates.
    demo = Demo(api, pool, codec, salon, seed=1 + existing,
                read_after_s=cfg.simulator.read_after_ms / 1000)
    return await demo.run(args.customers, args.days), salon


def _campaign_line(outcome: Outcome, index: int) -> str:
    campaign = outcome.campaigns[index]
    stats = campaign.stats
    channel = {"both": "WhatsApp, SMS fallback", "sms": "SMS", "whatsapp": "WhatsApp"}.get(
        campaign.channel, campaign.channel)
    parts = [f"{stats['sent']} sent", f"{stats['delivered']} delivered", f"{stats['read']} read"]
    fallback = campaign.count("fallbackFrom", "whatsapp")
    if fallback:
        parts.append(f"{fallback} fell back to SMS")
    failed = stats["failed"]
    if failed["total"]:
        codes = ", ".join(f"{f['errorCode']}: {f['count']}" for f in failed["byErrorCode"])
        parts.append(f"{failed['total']} failed ({codes})")
    skipped = stats["skipped"]
    if skipped["total"]:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in skipped["byReason"].items())
        parts.append(f"{skipped['total']} skipped ({reasons})")
    return f"  campaign    {campaign.name} ({channel}): {', '.join(parts)}"


def _offer_text(offer: dict[str, Any]) -> str:
    terms = [f"{offer['discountValue']}% off" if offer["discountType"] == "percentage"
             else f"{format_rupees(offer['discountValue'])} off"]
    if offer.get("maxDiscountInPaisa"):
        terms.append(f"up to {format_rupees(offer['maxDiscountInPaisa'])}")
    if offer.get("minimumPurchaseInPaisa"):
        terms.append(f"minimum {format_rupees(offer['minimumPurchaseInPaisa'])}")
    terms.append(f"valid {offer['validityDays']} days")
    return f"{offer['name']} ({', '.join(terms)})"


def _span(cal: Calendar) -> str:
    days = round((cal.end - cal.start).total_seconds() / 86400)
    return f"{cal.start:%Y-%m-%d} to {cal.end:%Y-%m-%d} ({days} days)"


def summary(outcome: Outcome, salon: host.Salon) -> str:
    """What the demo did, in a few lines."""
    imp = outcome.import_status
    registered = sum(w.registered for w in outcome.waves)
    redeemed = sum(w.redeemed for w in outcome.waves)
    share = registered / outcome.invited if outcome.invited else 0.0
    lines = [
        f"Demo history for salon {salon.name!r} ({salon.id}), {_span(outcome.calendar)}:",
        f"  import      {outcome.rows} rows: {imp['successfulImports']} customers imported, "
        f"{imp['failedImports']} failed, {imp['duplicateSkipped']} duplicates skipped",
        f"  offer       {_offer_text(outcome.offer)}",
        *(_campaign_line(outcome, i) for i in range(len(outcome.campaigns))),
        f"  registered  {registered} of {outcome.invited} invited customers ({share:.0%}): "
        + ", ".join(f"{w.registered} after {c.name!r}"
                    for w, c in zip(outcome.waves, outcome.campaigns, strict=True)),
        f"  redeemed    {redeemed} bookings used the offer: "
        f"{format_rupees(sum(w.discount_paisa for w in outcome.waves))} off "
        f"{format_rupees(sum(w.booked_paisa for w in outcome.waves))} of bookings",
    ]
    return "\n".join(lines)
