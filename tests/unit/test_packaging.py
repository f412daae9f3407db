"""What the wheel must carry and what start-up checks: every query the code names exists, every
code folder is a listed package, and an empty or broken migration folder is refused."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from onboardd.db.migrate import available, newest_version, scan
from onboardd.db.queries import (
    InstallationError,
    catalogue,
    check_catalogue,
    parse_blocks,
    referenced_names,
)

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"""\bquery\(\s*"(\w+)"\s*\)""")


def _names_in_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "onboardd").rglob("*.py"):
        if path.name != "queries.py":
            names.update(CALL.findall(path.read_text()))
    return names


def test_every_query_the_code_names_is_in_the_catalogue() -> None:
    names = _names_in_code()
    assert len(names) > 90  # the scan found the code's calls
    assert sorted(names - catalogue().keys()) == []
    assert sorted(catalogue().keys() - names) == [], "a query no code asks for: delete it"
    assert set(referenced_names()) == names  # start-up sees exactly what this scan sees
    assert check_catalogue() == len(catalogue())


def test_every_code_folder_is_a_package_of_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "onboardd").rglob("*.py") if "__pycache__" not in p.parts}
    assert folders <= set(setuptools["packages"]), "add the folder to [tool.setuptools] packages"
    assert setuptools["package-dir"] == {"onboardd.sql": "sql"}
    assert "onboardd.sql" in setuptools["packages"]


def test_shipped_migrations_are_read_through_the_package() -> None:
    files = sorted(p.name for p in (ROOT / "sql" / "migrations").glob("*.sql"))
    assert [f"{m.version:04d}_{m.name}.sql" for m in available()] == files
    assert newest_version() == int(files[-1][:4])


def test_an_empty_migration_folder_is_an_installation_error(tmp_path: Path) -> None:
    with pytest.raises(InstallationError, match=f"no migrations found in {tmp_path}: "):
        scan(tmp_path)
    with pytest.raises(InstallationError, match=r"no migrations found in .*missing"):
        scan(tmp_path / "missing")


def test_badly_named_or_repeated_migrations_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0001_again.sql").write_text("SELECT 1;")
    with pytest.raises(InstallationError, match="share a number: \\[1, 1\\]"):
        scan(tmp_path)
    (tmp_path / "0001_again.sql").unlink()
    (tmp_path / "two.sql").write_text("SELECT 2;")
    with pytest.raises(InstallationError, match=r"two\.sql: migration files are named"):
        scan(tmp_path)


def test_a_query_defined_twice_is_refused() -> None:
    text = "-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;\n-- name: a\nSELECT 3;\n"
    with pytest.raises(InstallationError, match=r"x\.sql: query 'a' is defined twice"):
        parse_blocks(text, "x.sql")
    assert parse_blocks(text.rsplit("-- name: a", 1)[0], "x.sql") == {
        "a": "SELECT 1;", "b": "SELECT 2;"}
