"""Named SQL blocks from sql/queries/*.sql, parsed once.

A block starts with a line ``-- name: some_name`` and runs to the next such line. Code reaches
SQL only through ``query("some_name")`` so every statement lives in a .sql file.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

_NAME_RE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_blocks(text: str, source: str = "<string>") -> dict[str, str]:
    """Split a file into {name: sql}; a repeated name is an error."""
    blocks: dict[str, str] = {}
    matches = list(_NAME_RE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name = match.group(1)
        if name in blocks:
            raise ValueError(f"{source}: query '{name}' is defined twice")
        blocks[name] = text[match.end() : end].strip()
    return blocks


@cache
def _all_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        for name, sql in parse_blocks(path.read_text(), str(path)).items():
            if name in queries:
                raise ValueError(f"{path}: query '{name}' is defined in another file too")
            queries[name] = sql
    return queries


def query(name: str) -> str:
    """The SQL text of a named query."""
    try:
        return _all_queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named '{name}' in {SQL_DIR / 'queries'}") from None
