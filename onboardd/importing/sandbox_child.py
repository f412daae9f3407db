"""The child side of the upload sandbox (see onboardd.importing.sandbox): read one file under
an address-space and CPU limit, answer what the preview needs: the first rows and, when asked
(a region is given), the whole file's quality summary with the mapping in force
(onboardd.importing.quality). It imports only what reading and validating a file takes (no
asyncio, no logging), so each upload's child starts in about half the time.

Protocol: one msgpack ParseRequest on stdin, one msgpack reply (Parsed or Refused) on stdout.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Final

import msgspec

from onboardd.domain.columns import ColumnMapping
from onboardd.importing.consent import as_default_consent
from onboardd.importing.errors import FileRejected
from onboardd.importing.files import Kind, Table, detect_kind, read_table
from onboardd.importing.mapping import (
    MappingError,
    guess,
    mapping_from_request,
    require_phone,
)
from onboardd.importing.quality import FileQuality, file_quality

# The child's address space and CPU time; a real 5 MB customer file needs a fraction of it.
CHILD_MEMORY_BYTES: Final = 1024 * 1024 * 1024
CHILD_CPU_S: Final = 60
# Lower scheduling priority: with every core busy reading uploads, the daemon still answers.
CHILD_NICENESS: Final = 10
SNIFF_BYTES: Final = 8192


class ParseRequest(msgspec.Struct, frozen=True):
    """What the child is asked to read. With a region, it also validates every row and counts
    (FileQuality), with `mapping` when the caller knows it already, else with the guessed
    mapping under the client's `requested` choices (no quality when that mapping is
    unusable: the caller reports the mapping problem)."""

    file_name: str
    data: bytes
    max_rows: int
    max_columns: int
    max_uncompressed_bytes: int
    head_rows: int
    region: str | None = None
    default_consent: str = "assume"
    mapping: ColumnMapping | None = None
    requested: dict[str, str | list[str]] | None = None


class Parsed(msgspec.Struct, frozen=True, tag="parsed"):
    """The file's kind, header, row count and first rows, and the whole file's quality when it
    was asked for."""

    kind: Kind
    headers: list[str]
    total_rows: int
    rows: list[list[str]]
    row_numbers: list[int]
    quality: FileQuality | None = None


class Refused(msgspec.Struct, frozen=True, tag="refused"):
    """A FileRejected from the child."""

    code: str
    message: str
    details: dict[str, object]


Reply = Parsed | Refused


def parse(request: ParseRequest) -> Reply:
    """Check the type against the content and read the table (the child's work)."""
    try:
        kind = detect_kind(request.file_name, request.data[:SNIFF_BYTES])
        table = read_table(kind, request.data, max_rows=request.max_rows,
                           max_columns=request.max_columns,
                           max_uncompressed_bytes=request.max_uncompressed_bytes)
    except FileRejected as exc:
        return Refused(exc.code, exc.message, exc.details)
    head = request.head_rows
    return Parsed(kind, table.headers, len(table.rows), table.rows[:head],
                  table.row_numbers[:head], _quality(request, table))


def _quality(request: ParseRequest, table: Table) -> FileQuality | None:
    """The whole file validated with the mapping in force, or None (not asked, or no usable
    mapping)."""
    if request.region is None:
        return None
    mapping = request.mapping
    if mapping is None:
        try:
            mapping = guess(table.headers)[0]
            if request.requested:
                mapping = mapping_from_request(table.headers, request.requested, mapping)
            require_phone(mapping, table.headers)
        except MappingError:
            return None
    return file_quality(table, mapping, request.region,
                        as_default_consent(request.default_consent))


def _limit_self() -> None:
    """Cap this process's address space and CPU time, and yield the CPU to the daemon."""
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CHILD_CPU_S, CHILD_CPU_S))
    os.nice(CHILD_NICENESS)


def main() -> None:
    """Child entry: read one request from stdin, answer on stdout."""
    _limit_self()
    request = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=ParseRequest)
    try:
        reply: Reply = parse(request)
    except MemoryError:
        sys.exit(3)
    sys.stdout.buffer.write(msgspec.msgpack.encode(reply))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
