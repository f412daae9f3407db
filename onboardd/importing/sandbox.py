"""Reading an uploaded file in a child process with bounded memory and CPU.

An upload is the first contact with a file nobody has vetted. Its parse (type check, the grid
checks, CSV decoding or the spreadsheet reader) runs in a fresh `python -m
onboardd.importing.sandbox_child` process: off the event loop and out of its GIL, so one salon's
upload cannot stall the daemon for the others, and with an address-space and CPU limit, so a
reader that still tries to allocate a giant grid ends only the child. The child answers with
what the preview needs (kind, headers, row count, first rows), never the whole table; the
importer later reads the stored file, which passed this check, in a worker thread. This module
is the parent's side; the child's (and the protocol) is onboardd.importing.sandbox_child.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import weakref
from typing import Final

import msgspec

from onboardd.domain.masking import mask_digits
from onboardd.importing.errors import FileRejected
from onboardd.importing.sandbox_child import (
    CHILD_CPU_S,
    CHILD_MEMORY_BYTES,
    Parsed,
    ParseRequest,
    Refused,
    Reply,
    parse,
)
from onboardd.logging import get_logger

__all__ = [
    "CHILD_CPU_S",
    "CHILD_MEMORY_BYTES",
    "ParseRequest",
    "Parsed",
    "Refused",
    "parse",
    "parse_in_child",
]

log = get_logger("import")

CHILD_WALL_S: Final = 90.0
# Children parsing at once per process; further uploads wait for a slot.
PARALLEL_PARSES: Final = 2

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(PARALLEL_PARSES)
    return slot


def _too_costly(reason: str) -> FileRejected:
    limit_mb = CHILD_MEMORY_BYTES // (1024 * 1024)
    return FileRejected(
        "too_costly_to_read",
        f"The file could not be read within the limits of one upload ({limit_mb} MB of memory, "
        f"{CHILD_CPU_S} s of CPU): {reason}. A customer list needs far less; save just the "
        "customer columns and rows as a new .xlsx or CSV file and upload that.",
        {"memoryLimitMb": limit_mb, "cpuLimitS": CHILD_CPU_S, "reason": reason})


async def parse_in_child(request: ParseRequest) -> Parsed:
    """Run parse() in a bounded child process; FileRejected when the file is refused or the
    child ends without an answer (memory or time exhausted)."""
    payload = msgspec.msgpack.encode(request)
    async with _slot():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "onboardd.importing.sandbox_child",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(payload), CHILD_WALL_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise _too_costly(f"reading took longer than {CHILD_WALL_S:.0f} s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    if proc.returncode == 0:
        try:
            reply = msgspec.msgpack.decode(out, type=Reply)
        except msgspec.DecodeError:
            reply = None
        if isinstance(reply, Parsed):
            return reply
        if isinstance(reply, Refused):
            raise FileRejected(reply.code, reply.message, reply.details)
    lines = err.decode(errors="replace").strip().splitlines()
    # The reader's last words (e.g. "memory allocation of N bytes failed"), digits masked.
    log.warning("import_parse_child_failed", returncode=proc.returncode,
                stderr=mask_digits(lines[0][:300]) if lines else "")
    raise _too_costly("the reader ran out of memory or time" if proc.returncode != 0
                      else "the reader gave no answer")
