"""`onboardd salon add|list`: salons in the configured database (embedded or external)."""

from __future__ import annotations

import argparse
import sys

from onboardd.config import Config
from onboardd.db.salons import add_salon, list_salons
from onboardd.domain.salons import SalonFieldError, validate_salon
from onboardd.runtime import open_services


async def run_salon(cfg: Config, args: argparse.Namespace) -> int:
    """Run one salon action; the exit code."""
    if args.salon_command == "add":
        try:
            fields = validate_salon(args.name, args.country, args.timezone, args.app_link)
        except SalonFieldError as exc:
            print(f"onboardd salon add: {exc}", file=sys.stderr)
            return 2
        async with open_services(cfg) as services:
            salon_id = await add_salon(services.pool, fields)
        print(salon_id)
        return 0
    async with open_services(cfg) as services:
        salons = await list_salons(services.pool)
    if not salons:
        print("no salons yet: add one with `onboardd salon add NAME`")
        return 0
    print(f"{'ID':<36}  {'NAME':<30}  {'COUNTRY':<7}  {'TIMEZONE':<20}  {'CUSTOMERS':>9}")
    for salon in salons:
        print(f"{salon.id:<36}  {salon.name[:30]:<30}  {salon.country:<7}  "
              f"{salon.timezone:<20}  {salon.customers:>9}")
    return 0
