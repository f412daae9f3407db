"""The actors the supervisor runs; each module exposes one entry coroutine."""

from __future__ import annotations

import functools

from onboardd.actors import scheduler
from onboardd.services import Services
from onboardd.supervisor import ActorFn


def build_actors(services: Services) -> dict[str, ActorFn]:
    """Name -> entry coroutine bound to the services, in start order."""
    actors: dict[str, ActorFn] = {
        # -- actors: one line per actor, keep this marker --
        "scheduler": functools.partial(scheduler.run, services),
    }
    return actors
