"""`onboardd pii status | rotate [--batch-size N]`: which keys hold the stored PII, and
re-encrypting all of it under the current key (resumable: run it again after an interruption),
after which retired keys can be removed from `[pii] retired_keys`."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from onboardd.cli.progress import ProgressBar
from onboardd.config import Config
from onboardd.db.pii_rotation import KeyCount
from onboardd.runtime import open_services
from onboardd.services import pii_rotation as service


def _print_census(counts: list[KeyCount], key_id: str, out: TextIO) -> None:
    if not counts:
        print("no encrypted PII is stored yet", file=out)
        return
    print(f"{'COLUMN':<40}  {'KEY ID':<12}  {'CIPHERTEXTS':>11}", file=out)
    for c in counts:
        mark = " (current)" if c.key_id == key_id else ""
        print(f"{c.column:<40}  {c.key_id:<12}  {c.count:>11}{mark}", file=out)


def _verdict(counts: list[KeyCount], key_id: str, retired: list[str], out: TextIO) -> int:
    left = {c.key_id for c in counts if c.key_id != key_id}
    if left:
        total = sum(c.count for c in counts if c.key_id != key_id)
        print(f"{total} ciphertexts are under other keys ({', '.join(sorted(left))}): run "
              "`onboardd pii rotate`", file=out)
        return 1
    removable = ", ".join(retired) if retired else "none are configured"
    print(f"every ciphertext is under the current key {key_id!r}: retired keys can be "
          f"removed from [pii] retired_keys ({removable})", file=out)
    return 0


def _retired_ids(cfg: Config) -> list[str]:
    return [item.partition(":")[0].strip() for item in cfg.pii.retired_keys.split(",")
            if item.strip()]


async def run_pii(cfg: Config, args: argparse.Namespace) -> int:
    """Run one pii action; the exit code (0 done, 1 ciphertexts left under other keys, 2 the
    rotation cannot start)."""
    async with open_services(cfg) as services:
        key_id = services.cipher.key_id
        if args.pii_command == "status":
            counts = await service.census(services)
            _print_census(counts, key_id, sys.stdout)
            return _verdict(counts, key_id, _retired_ids(cfg), sys.stdout)
        if args.batch_size < 1:
            print("onboardd pii rotate: --batch-size must be at least 1", file=sys.stderr)
            return 2
        try:
            result = await service.rotate(services, batch=args.batch_size,
                                          progress=ProgressBar(
                                              sys.stderr,
                                              "re-encrypted {done}/{total} ciphertexts"))
        except service.RotationError as exc:
            print(f"onboardd pii rotate: {exc}", file=sys.stderr)
            return 2
    print(f"re-encrypted {result.rotated} ciphertexts under key {key_id!r}")
    return _verdict(result.census, key_id, _retired_ids(cfg), sys.stdout)
