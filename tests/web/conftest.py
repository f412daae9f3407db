"""Fixtures of the HTTP tests (API and admin pages)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from onboardd.actors import importer
from onboardd.runtime import Services


@pytest.fixture
async def importer_running(services: Services) -> AsyncIterator[None]:
    """The importer actor on the test services."""
    stopping = asyncio.Event()
    task = asyncio.create_task(importer.run(services, stopping))
    yield
    stopping.set()
    await task
