"""The actors the supervisor runs; each module exposes one entry coroutine."""

from __future__ import annotations

import functools
from collections.abc import Callable

from onboardd.actors import (
    dispatcher,
    importer,
    offer_matcher,
    scheduler,
    status_folder,
    status_recorder,
)
from onboardd.runtime import Services
from onboardd.supervisor import ActorFn, ActorState, Supervisor

# Actors told to stop only after every other one has returned: the status recorder makes the
# others' outcomes durable, so it drains its queue last (and applies the status callbacks it
# appended to the status inbox last); the membership keeps this instance alive (and its
# senders owned) until the dispatcher's last request is over.
DRAIN_LAST: frozenset[str] = frozenset({"status_recorder", "membership"})


def build_actors(services: Services) -> dict[str, ActorFn]:
    """Name -> entry coroutine bound to the services, in start order."""
    actors: dict[str, ActorFn] = {
        "membership": services.membership.run,
        "dispatcher": functools.partial(dispatcher.run, services),
        "offer_matcher": functools.partial(offer_matcher.run, services),
        "status_recorder": functools.partial(status_recorder.run, services),
        "status_folder": functools.partial(status_folder.run, services),
        "importer": functools.partial(importer.run, services),
        "scheduler": functools.partial(scheduler.run, services),
    }
    return actors


def readiness(supervisor: Supervisor, services: Services) -> Callable[[], dict[str, str]]:
    """What /readyz reports besides the database: every actor not running, and the liveness
    lock when this instance does not hold it (it will not claim work until it does)."""

    def report() -> dict[str, str]:
        failing = supervisor.not_running()
        if not services.membership.alive.is_set():
            failing["liveness"] = "no instance lock held (joining the database, or rejoining)"
        return failing

    return report


def register_actors(supervisor: Supervisor, services: Services) -> None:
    """Add every actor to the supervisor, the drain-last ones marked as such; their states are
    read at every metrics scrape."""
    for name, fn in build_actors(services).items():
        supervisor.add(name, fn, drain_last=name in DRAIN_LAST)
    services.metrics.watch_actors(supervisor.states, [state.value for state in ActorState])
