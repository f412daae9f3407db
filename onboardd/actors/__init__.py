"""The actors the supervisor runs; each module exposes one entry coroutine."""

from __future__ import annotations

import functools

from onboardd.actors import dispatcher, importer, offer_matcher, scheduler, status_recorder
from onboardd.runtime import Services
from onboardd.supervisor import ActorFn, Supervisor

# Actors told to stop only after every other one has returned: the status recorder makes the
# others' outcomes durable, so it drains its queue last.
DRAIN_LAST: frozenset[str] = frozenset({"status_recorder"})


def build_actors(services: Services) -> dict[str, ActorFn]:
    """Name -> entry coroutine bound to the services, in start order."""
    actors: dict[str, ActorFn] = {
        "dispatcher": functools.partial(dispatcher.run, services),
        "offer_matcher": functools.partial(offer_matcher.run, services),
        "status_recorder": functools.partial(status_recorder.run, services),
        "importer": functools.partial(importer.run, services),
        "scheduler": functools.partial(scheduler.run, services),
    }
    return actors


def register_actors(supervisor: Supervisor, services: Services) -> None:
    """Add every actor to the supervisor, the drain-last ones marked as such."""
    for name, fn in build_actors(services).items():
        supervisor.add(name, fn, drain_last=name in DRAIN_LAST)
