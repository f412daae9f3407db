"""Prometheus metrics of one daemon instance, served at GET /metrics (onboardd.web.metrics).

Each ``Metrics`` owns its own ``CollectorRegistry`` (never prometheus_client's global one), so
every Services object, and every app a test builds in one process, counts on its own. Events
are counted where they happen, through the methods below; queue depths, the connection pool and
the actors' states are read when Prometheus scrapes (``watch``, ``watch_actors``), so they are
never stale. Every family is listed, with an example alert, in the README's "Metrics" section.

The pool's waiting count is not public API in asyncpg: ``pool_waiting`` reads the idle-holder
queue the pool keeps (an ``asyncio.Queue``, whose ``_getters`` are the futures of tasks blocked
in ``acquire()``) defensively, and reports nothing when those internals are not there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A limiter wait spans a token's gap (milliseconds) up to a 429 pause (a minute or more).
_WAIT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)
_FLUSH_EVENT_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500)
_FOLD_EVENT_BUCKETS: Final = (1, 5, 25, 100, 250, 500, 1000, 2000)
_MATCH_LAG_BUCKETS: Final = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class PoolStats(Protocol):
    """What the pool collector reads of an asyncpg pool (its public size getters)."""

    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_min_size(self) -> int: ...
    def get_max_size(self) -> int: ...


QueuesFn = Callable[[], Mapping[str, "asyncio.Queue[Any]"]]
PoolFn = Callable[[], PoolStats | None]
StatesFn = Callable[[], Mapping[str, str]]


def pool_waiting(pool: object) -> int | None:
    """Tasks blocked in ``pool.acquire()`` waiting for a connection; None when unreadable.

    asyncpg keeps its idle connection holders in ``pool._queue``, an ``asyncio.Queue``; a task
    that finds it empty waits on a future appended to the queue's ``_getters``. Neither is
    public, so each step is looked up defensively: another asyncpg may lack them, and then the
    sample is left out rather than wrong.
    """
    getters = getattr(getattr(pool, "_queue", None), "_getters", None)
    if getters is None:
        return None
    try:
        return sum(1 for future in list(getters) if not future.done())
    except (TypeError, AttributeError):
        return None


class _ScrapeTime:
    """Families read when Prometheus scrapes: queues, the pool, the actors."""

    def __init__(self) -> None:
        self.queues: QueuesFn | None = None
        self.pool: PoolFn | None = None
        self.actors: StatesFn | None = None
        self.actor_states: Sequence[str] = ()

    def collect(self) -> Iterable[Metric]:
        yield from self._queues()
        yield from self._pool()
        yield from self._actors()

    def _queues(self) -> Iterator[Metric]:
        if self.queues is None:
            return
        depth = GaugeMetricFamily("onboardd_queue_depth", "Items waiting in an in-process "
                                  "queue between actors", labels=["queue"])
        capacity = GaugeMetricFamily("onboardd_queue_capacity", "Bound of an in-process queue "
                                     "(a full queue falls back to the actors' polls)",
                                     labels=["queue"])
        for name, queue in self.queues().items():
            depth.add_metric([name], queue.qsize())
            capacity.add_metric([name], queue.maxsize)
        yield depth
        yield capacity

    def _pool(self) -> Iterator[Metric]:
        pool = self.pool() if self.pool is not None else None
        if pool is None:
            return
        size, idle = pool.get_size(), pool.get_idle_size()
        yield GaugeMetricFamily("onboardd_db_pool_connections", "Open connections of the "
                                "database pool", value=size)
        yield GaugeMetricFamily("onboardd_db_pool_in_use", "Pool connections acquired by a "
                                "task", value=size - idle)
        yield GaugeMetricFamily("onboardd_db_pool_idle", "Open pool connections nobody holds",
                                value=idle)
        yield GaugeMetricFamily("onboardd_db_pool_min", "[database] pool_min_size",
                                value=pool.get_min_size())
        yield GaugeMetricFamily("onboardd_db_pool_max", "[database] pool_max_size",
                                value=pool.get_max_size())
        waiting = pool_waiting(pool)
        if waiting is not None:
            yield GaugeMetricFamily("onboardd_db_pool_waiting", "Tasks waiting for a pool "
                                    "connection (all max connections in use)", value=waiting)

    def _actors(self) -> Iterator[Metric]:
        if self.actors is None:
            return
        up = GaugeMetricFamily("onboardd_actor_up", "1 while the actor runs, 0 in any other "
                               "state (onboardd_actor_state says which)", labels=["actor"])
        state = GaugeMetricFamily("onboardd_actor_state", "1 for the state the actor is in",
                                  labels=["actor", "state"])
        for name, current in self.actors().items():
            up.add_metric([name], float(current == "running"))
            for candidate in self.actor_states:
                state.add_metric([name, candidate], float(current == candidate))
        yield up
        yield state


class Metrics:
    """Every metric family of one instance, in its own registry.

    The dispatcher's calls: ``send_finished(channel, seconds)`` after each request to Twilio,
    ``limiter_waited(channel, seconds)`` after each rate-limiter acquire,
    ``rate_limit_paused(channel)`` when a 429 pauses a channel, ``sender_ownership(channel,
    sender, owned)`` when this instance gains or loses a sender, ``instance_liveness(live)``
    when it takes or loses its liveness lock.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self._scrape_time = _ScrapeTime()
        reg.register(self._scrape_time)
        self.actor_restarts = Counter(
            "onboardd_actor_restarts", "Actor crashes (or unexpected returns) that led to a "
            "restart or a crash loop", ["actor"], registry=reg)
        self.send_outcomes = Counter(
            "onboardd_send_outcomes", "Send outcomes the status recorder applied, by channel "
            "and outcome (accepted, retry, failed, skipped, fallback)", ["channel", "outcome"],
            registry=reg)
        self.status_callbacks = Counter(
            "onboardd_status_callbacks", "Status callbacks applied to a known message, by "
            "Twilio status", ["status"], registry=reg)
        self.send_seconds = Histogram(
            "onboardd_send_duration_seconds", "Duration of one request to Twilio's Messages "
            "API", ["channel"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.limiter_wait_seconds = Histogram(
            "onboardd_limiter_wait_seconds", "Time a send waited for its sender's rate limit",
            ["channel"], buckets=_WAIT_BUCKETS, registry=reg)
        self.rate_limit_pauses = Counter(
            "onboardd_rate_limit_pauses", "Pauses of a channel after Twilio answered 429 / "
            "20429", ["channel"], registry=reg)
        self.sender_owned = Gauge(
            "onboardd_sender_owned", "1 while this instance sends for the sender, 0 after it "
            "lost or released it", ["channel", "sender"], registry=reg)
        self.instance_live = Gauge(
            "onboardd_instance_live", "1 while this instance holds its liveness lock in "
            "PostgreSQL", registry=reg)
        self.import_rows = Counter(
            "onboardd_import_rows", "Import rows processed (written, failed or duplicate)",
            registry=reg)
        self.webhook_seconds = Histogram(
            "onboardd_webhook_duration_seconds", "Time to answer a Twilio webhook (a status "
            "callback is answered once it is durable)", ["route"], buckets=_LATENCY_BUCKETS,
            registry=reg)
        self.flush_events = Histogram(
            "onboardd_recorder_flush_events", "Events (send outcomes and callbacks) per status "
            "recorder flush", buckets=_FLUSH_EVENT_BUCKETS, registry=reg)
        self.flush_seconds = Histogram(
            "onboardd_recorder_flush_duration_seconds", "Duration of one status recorder "
            "flush (its transaction)", buckets=_LATENCY_BUCKETS, registry=reg)
        self.inbox_rows = Gauge(
            "onboardd_status_inbox_rows", "Status callbacks durable in the status inbox but not "
            "applied yet, as the last fold of this instance left it", registry=reg)
        self.fold_events = Histogram(
            "onboardd_status_fold_events", "Inbox rows (status callbacks) applied per status "
            "folder transaction", buckets=_FOLD_EVENT_BUCKETS, registry=reg)
        self.fold_seconds = Histogram(
            "onboardd_status_fold_duration_seconds", "Duration of one status folder "
            "transaction", buckets=_LATENCY_BUCKETS, registry=reg)
        self.fold_lag_seconds = Histogram(
            "onboardd_status_fold_lag_seconds", "From the oldest callback of a fold reaching "
            "the inbox to that fold's commit (how stale message statuses are)",
            buckets=_LATENCY_BUCKETS, registry=reg)
        self._webhook_routes: dict[str, Histogram] = {}  # webhook_seconds by route, looked up once
        self.rate_limited_requests = Counter(
            "onboardd_rate_limited", "Requests refused 429 by the API rate limits, by area "
            "(admin, mobile, webhook, check)", ["area"], registry=reg)
        for area in ("admin", "mobile", "webhook", "check"):
            self.rate_limited_requests.labels(area)
        self.match_lag_seconds = Histogram(
            "onboardd_match_lag_seconds", "From a registration event's creation to its match "
            "(linked and granted)", buckets=_MATCH_LAG_BUCKETS, registry=reg)

    # Scrape-time sources ------------------------------------------------------------------------

    def watch(self, *, queues: QueuesFn, pool: PoolFn) -> None:
        """Read these queues and this pool at every scrape (Services wires its own)."""
        self._scrape_time.queues = queues
        self._scrape_time.pool = pool

    def watch_actors(self, states: StatesFn, possible: Sequence[str]) -> None:
        """Read the actors' states (each one of ``possible``) at every scrape; every actor's
        restart count starts at 0."""
        self._scrape_time.actors = states
        self._scrape_time.actor_states = tuple(possible)
        for name in states():
            self.actor_restarts.labels(name)

    def render(self) -> bytes:
        """The Prometheus text exposition of every family."""
        return generate_latest(self.registry)

    # Events ---------------------------------------------------------------------------------------

    def actor_restarted(self, actor: str) -> None:
        """The supervisor charged a restart to this actor."""
        self.actor_restarts.labels(actor).inc()

    def outcomes_applied(self, outcomes: Iterable[tuple[str, str]]) -> None:
        """(channel, outcome) of each send outcome a committed flush applied."""
        for channel, outcome in outcomes:
            self.send_outcomes.labels(channel, outcome).inc()

    def callbacks_applied(self, statuses: Mapping[str, int]) -> None:
        """Callbacks a committed flush applied to known messages, counted by Twilio status."""
        for status, count in statuses.items():
            self.status_callbacks.labels(status).inc(count)

    def recorder_flushed(self, events: int, seconds: float) -> None:
        """One committed status recorder flush."""
        self.flush_events.observe(events)
        self.flush_seconds.observe(seconds)

    def inbox_folded(self, events: int, left: int, seconds: float, lag_s: float | None) -> None:
        """One committed status folder transaction: rows applied, rows it left in the inbox,
        its duration, and the age of its oldest row at commit (None when it took none)."""
        self.inbox_rows.set(left)
        if events:
            self.fold_events.observe(events)
            self.fold_seconds.observe(seconds)
        if lag_s is not None:
            self.fold_lag_seconds.observe(lag_s)

    def send_finished(self, channel: str, seconds: float) -> None:
        """One request to Twilio returned (or failed) after this long."""
        self.send_seconds.labels(channel).observe(seconds)

    def limiter_waited(self, channel: str, seconds: float) -> None:
        """A send waited this long for its sender's rate limit (0 when it did not wait)."""
        self.limiter_wait_seconds.labels(channel).observe(seconds)

    def rate_limit_paused(self, channel: str) -> None:
        """Twilio's 429 paused this channel."""
        self.rate_limit_pauses.labels(channel).inc()

    def sender_ownership(self, channel: str, sender: str, owned: bool) -> None:
        """This instance took (True) or lost / released (False) the sending for a sender."""
        self.sender_owned.labels(channel, sender).set(1.0 if owned else 0.0)

    def instance_liveness(self, live: bool) -> None:
        """This instance took (True) or lost (False) its liveness lock."""
        self.instance_live.set(1.0 if live else 0.0)

    def import_rows_processed(self, rows: int) -> None:
        """A committed import chunk processed this many rows."""
        self.import_rows.inc(rows)

    def rate_limited(self, area: str) -> None:
        """The API rate limits refused a request of this area (429)."""
        self.rate_limited_requests.labels(area).inc()

    def webhook_answered(self, route: str, seconds: float) -> None:
        """A Twilio webhook on this route was answered after this long."""
        child = self._webhook_routes.get(route)
        if child is None:
            child = self._webhook_routes[route] = self.webhook_seconds.labels(route)
        child.observe(seconds)

    def registrations_matched(self, created: Iterable[datetime],
                              now: datetime | None = None) -> None:
        """Registration events created at these times were matched (committed) now.

        The creation time is the database's clock, now is this host's: a small skew is
        clamped at 0.
        """
        at = now or datetime.now(UTC)
        for created_at in created:
            aware = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
            self.match_lag_seconds.observe(max(0.0, (at - aware).total_seconds()))
