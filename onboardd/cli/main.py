"""Command line: onboardd serve | migrate | token | salon | demo | import | reconcile | pii |
simulator | version.

Each command imports what it runs when it runs: `onboardd version` and `onboardd token` load
neither the database driver, aiohttp nor twilio, and answer in a fraction of the time the
daemon's imports take.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from onboardd import __version__
from onboardd.auth import codec_from_config, parse_ttl
from onboardd.config import Config, ConfigError, default_path, load
from onboardd.db.queries import InstallationError
from onboardd.logging import configure


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onboardd",
        description="Import a salon's customers, invite them over WhatsApp/SMS with a welcome "
        "offer, and recognise them when they register in the app.",
    )
    parser.add_argument("--config", metavar="PATH", type=Path,
                        help="TOML config file (default: ./onboardd.toml if present); every key "
                        "can be overridden by ONBOARDD_<SECTION>_<KEY>")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("serve", help="run the daemon: web front, actors, embedded Postgres and "
                   "Twilio simulator unless configured otherwise")
    sub.add_parser("migrate", help="apply pending database migrations and exit")
    token = sub.add_parser("token", help="print a JWT signed with the configured key")
    token.add_argument("--user", required=True, help="the token's subject (user id)")
    token.add_argument("--role", required=True, choices=("admin", "customer"))
    token.add_argument("--salon", action="append", default=[], metavar="ID",
                       help="a salon the admin manages (repeatable)")
    token.add_argument("--ttl", default="1h", help="lifetime: 90s, 15m, 1h, 7d (default 1h)")
    token.add_argument("--phone", default=None, metavar="E164",
                       help="a customer's verified number (the phone claim), e.g. +919876543210")
    sub.add_parser("simulator", help="run the Twilio simulator alone (for demos and tests)")
    imp = sub.add_parser("import", help="import a customer file (.csv/.xlsx/.xls) into a salon")
    imp.add_argument("file", type=Path, help="the customer list")
    imp.add_argument("--salon", required=True, metavar="ID", help="the salon to import into")
    imp.add_argument("--yes", action="store_true", help="import without asking after the preview")
    rec = sub.add_parser("reconcile", help="ask Twilio's message list for statuses that "
                         "callbacks never delivered, and record them")
    rec.add_argument("--campaign", metavar="ID", help="only this campaign (default: all)")
    rec.add_argument("--wait-s", type=float, default=None, metavar="S",
                     help="treat messages as unfinished after S seconds (default [campaigns] "
                     "delivery_wait_s)")
    salon = sub.add_parser("salon", help="add or list salons in the configured database")
    salon_sub = salon.add_subparsers(dest="salon_command", metavar="ACTION", required=True)
    add = salon_sub.add_parser("add", help="create a salon and print its id")
    add.add_argument("name", help="the salon's name, as customers see it in invitations")
    add.add_argument("--country", default="IN",
                     help="ISO 3166 country code: the default region of its customers' "
                     "phone numbers (default IN)")
    add.add_argument("--timezone", default="Asia/Kolkata",
                     help="IANA timezone for analytics and schedules (default Asia/Kolkata)")
    add.add_argument("--app-link", default=None, metavar="URL",
                     help="the app download link sent in invitations (http or https)")
    salon_sub.add_parser("list", help="list salons with their customer counts")
    demo = sub.add_parser("demo", help="fill a salon with a believable history through a "
                          "running daemon's API (customers, offer, campaigns, registrations)")
    demo.add_argument("--url", default=None,
                      help="the daemon's base URL (default: [http] host and port)")
    demo.add_argument("--token", default=None,
                      help="an admin token for the salon (default: minted with the configured "
                      "key)")
    demo.add_argument("--salon", default=None, metavar="ID",
                      help="the salon to fill (default: the only salon, or 'Demo Salon')")
    demo.add_argument("--days", type=int, default=60,
                      help="spread the history over this many past days (default 60)")
    demo.add_argument("--customers", type=int, default=400,
                      help="rows in the generated customer file (default 400)")
    demo.add_argument("--force", action="store_true",
                      help="run even if the salon already has customers")
    pii = sub.add_parser("pii", help="which keys hold the stored PII; re-encrypt it under "
                         "the current key")
    pii_sub = pii.add_subparsers(dest="pii_command", metavar="ACTION", required=True)
    pii_sub.add_parser("status", help="count ciphertexts per column and key id; says whether "
                       "retired keys can be removed")
    rotate = pii_sub.add_parser("rotate", help="re-encrypt every ciphertext under [pii] key, "
                                "in resumable batches (run again after an interruption)")
    rotate.add_argument("--batch-size", type=int, default=500, metavar="N",
                        help="rows per batch, each its own transaction (default 500)")
    sub.add_parser("version", help="print the version")
    return parser


def _load(path: Path | None) -> Config:
    return load(path if path is not None else default_path())


def _cmd_serve(cfg: Config, _args: argparse.Namespace) -> int:
    from onboardd.daemon import serve

    return asyncio.run(serve(cfg))


def _cmd_migrate(cfg: Config, _args: argparse.Namespace) -> int:
    from onboardd.db.migrate import newest_version
    from onboardd.runtime import open_services

    async def run() -> None:
        async with open_services(cfg):
            pass

    asyncio.run(run())
    print(f"migrations applied: the database is at version {newest_version()}")
    return 0


def _cmd_token(cfg: Config, args: argparse.Namespace) -> int:
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.role == "admin" and not args.salon:
        raise ConfigError("--salon: an admin token needs at least one --salon ID")
    phone = None
    if args.phone is not None:
        from onboardd.domain.phones import PhoneError, normalize_phone

        try:
            phone = normalize_phone(args.phone, "")
        except PhoneError as exc:
            raise ConfigError(f"--phone: {exc.message}: give the number with its country code, "
                              "such as +919876543210") from None
    print(codec_from_config(cfg).encode(args.user, args.role, list(args.salon), ttl,
                                        phone=phone))
    return 0


def _cmd_simulator(cfg: Config, _args: argparse.Namespace) -> int:
    from onboardd.simulator.app import serve_forever
    from onboardd.twilio.account import simulator_settings

    return asyncio.run(serve_forever(simulator_settings(cfg), cfg.simulator.host,
                                     cfg.simulator.port))


def _cmd_import(cfg: Config, args: argparse.Namespace) -> int:
    from onboardd.cli.imports import run_import

    return asyncio.run(run_import(cfg, args.file, args.salon, assume_yes=args.yes))


def _cmd_reconcile(cfg: Config, args: argparse.Namespace) -> int:
    from onboardd.cli.reconcile import run_reconcile

    return asyncio.run(run_reconcile(cfg, args.campaign, args.wait_s))


def _cmd_salon(cfg: Config, args: argparse.Namespace) -> int:
    from onboardd.cli.salons import run_salon

    return asyncio.run(run_salon(cfg, args))


def _cmd_demo(cfg: Config, args: argparse.Namespace) -> int:
    from onboardd.cli.demo import run_demo

    return asyncio.run(run_demo(cfg, args))


def _cmd_pii(cfg: Config, args: argparse.Namespace) -> int:
    from onboardd.cli.pii import run_pii

    return asyncio.run(run_pii(cfg, args))


def _cmd_version(_cfg: Config, _args: argparse.Namespace) -> int:
    print(f"onboardd {__version__}")
    return 0


DAEMONS = frozenset({"serve", "simulator"})

COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "serve": _cmd_serve,
    "migrate": _cmd_migrate,
    "token": _cmd_token,
    "simulator": _cmd_simulator,
    "version": _cmd_version,
    "reconcile": _cmd_reconcile,
    "import": _cmd_import,
    "salon": _cmd_salon,
    "demo": _cmd_demo,
    "pii": _cmd_pii,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        cfg = _load(args.config)
        # The daemons log to stdout (the journal); every other command's stdout is its output
        # (an id, a token, a summary), so its log lines go to stderr.
        configure(cfg.log.level, cfg.log.format,
                  sys.stdout if args.command in DAEMONS else sys.stderr)
        return COMMANDS[args.command](cfg, args)
    except ConfigError as exc:
        print(f"onboardd: configuration error: {exc}", file=sys.stderr)
        return 2
    except InstallationError as exc:
        print(f"onboardd: installation error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear line instead of a traceback for known start-up failures
        # Already loaded by any command that talks to the database.
        from onboardd.db.pool import DatabaseUnavailable

        if isinstance(exc, DatabaseUnavailable):
            print(f"onboardd: {exc}", file=sys.stderr)
            return 3
        raise
