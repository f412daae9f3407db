"""The SQL of onboardd, shipped inside the package as ``onboardd.sql``.

This file only makes the folder a package so that pyproject.toml can map it into the wheel and
an editable checkout can import it the same way; the code reads the .sql files beside it with
importlib.resources (onboardd/db/queries.py and onboardd/db/migrate.py).
"""
