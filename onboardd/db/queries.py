"""Named SQL blocks from the package's ``sql/queries/*.sql``, parsed once.

A block starts with a line ``-- name: some_name`` and runs to the next such line. Code reaches
SQL only through ``query("some_name")`` (always a literal name) so every statement lives in a
.sql file, and ``check_catalogue()`` can prove at start-up that every name the code asks for
exists. The SQL ships inside the package as ``onboardd.sql`` (the repository's top-level
``sql/`` folder), read with importlib.resources: an editable checkout and an installed wheel
find it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

SQL_PACKAGE = "onboardd.sql"
CODE_PACKAGE = "onboardd"

_NAME_RE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
# A call of query() with a literal name; _ANY_CALL_RE finds every call, literal or not. A method
# named query (`filters.query()`, `def query(`) is not this function.
_LITERAL_CALL_RE = re.compile(r"""(?<![.\w])(?<!def )query\(\s*["'](\w+)["']\s*\)""")
_ANY_CALL_RE = re.compile(r"(?<![.\w])(?<!def )query\(")


class InstallationError(Exception):
    """Files the daemon needs are missing or inconsistent: the package is incomplete."""


def sql_root() -> Traversable:
    """The folder holding ``migrations/`` and ``queries/``."""
    return files(SQL_PACKAGE)


def parse_blocks(text: str, source: str = "<string>") -> dict[str, str]:
    """Split a file into {name: sql}; a repeated name is an error."""
    blocks: dict[str, str] = {}
    matches = list(_NAME_RE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name = match.group(1)
        if name in blocks:
            raise InstallationError(f"{source}: query '{name}' is defined twice")
        blocks[name] = text[match.end() : end].strip()
    return blocks


@cache
def catalogue() -> dict[str, str]:
    """Every named query of every file, read once."""
    folder = sql_root() / "queries"
    queries: dict[str, str] = {}
    sources = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")),
                     key=lambda f: f.name) if folder.is_dir() else []
    for source in sources:
        for name, sql in parse_blocks(source.read_text(encoding="utf-8"), str(source)).items():
            if name in queries:
                raise InstallationError(f"{source}: query '{name}' is defined in another file too")
            queries[name] = sql
    return queries


def query(name: str) -> str:
    """The SQL text of a named query."""
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"no SQL query named '{name}' in {sql_root() / 'queries'}") from None


def _python_sources(folder: Traversable) -> Iterator[Traversable]:
    for entry in folder.iterdir():
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _python_sources(entry)
        elif entry.name.endswith(".py"):
            yield entry


def referenced_names() -> dict[str, list[str]]:
    """{query name: [module files that ask for it]} over the package's own code.

    A call whose argument is not a literal name is an error: the check could not see it.
    """
    names: dict[str, list[str]] = {}
    for source in _python_sources(files(CODE_PACKAGE)):
        if source.name == "queries.py":  # defines query(); its docstring shows a call
            continue
        text = source.read_text(encoding="utf-8")
        literal = _LITERAL_CALL_RE.findall(text)
        if len(literal) != len(_ANY_CALL_RE.findall(text)):
            raise InstallationError(
                f"{source}: query() is called with a name that is not a string literal")
        for name in literal:
            names.setdefault(name, []).append(source.name)
    return names


def check_catalogue() -> int:
    """Load every query once and check each name the code uses exists; returns the count."""
    folder = sql_root() / "queries"
    known = catalogue()
    if not known:
        raise InstallationError(f"no named SQL queries found in {folder}: the installation is "
                                "incomplete (reinstall onboardd from a complete wheel)")
    missing = {name: used for name, used in referenced_names().items() if name not in known}
    if missing:
        listed = ", ".join(f"{name} (used in {', '.join(sorted(set(used)))})"
                           for name, used in sorted(missing.items()))
        raise InstallationError(f"SQL queries missing from {folder}: {listed}")
    return len(known)
