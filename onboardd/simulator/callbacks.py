"""Status callbacks: a time-ordered heap drained by a fixed pool of worker tasks."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from twilio.request_validator import RequestValidator

from onboardd.logging import get_logger
from onboardd.simulator.errors import message_for
from onboardd.simulator.resource import API_VERSION
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.stats import Stats
from onboardd.simulator.store import MessageRecord, Transition

_log = get_logger("simulator.callbacks")


@dataclass(order=True, slots=True)
class _Job:
    """One callback POST due at epoch time ``due``."""

    due: float
    seq: int
    record: MessageRecord = field(compare=False)
    step: Transition = field(compare=False)
    attempt: int = field(compare=False, default=1)


def callback_params(record: MessageRecord, step: Transition) -> dict[str, str]:
    """The form fields Twilio posts to a StatusCallback URL."""
    params = {
        "MessageSid": record.sid,
        "SmsSid": record.sid,
        "MessageStatus": step.status,
        "SmsStatus": step.status,
        "AccountSid": record.account_sid,
        "From": record.from_,
        "To": record.to,
        "ApiVersion": API_VERSION,
    }
    if record.messaging_service_sid:
        params["MessagingServiceSid"] = record.messaging_service_sid
    if step.error_code is not None:
        params["ErrorCode"] = str(step.error_code)
        params["ErrorMessage"] = message_for(step.error_code)
    if record.channel == "whatsapp":
        params["ChannelPrefix"] = "whatsapp"
        params["ChannelToAddress"] = record.to.removeprefix("whatsapp:")
    return params


class CallbackDispatcher:
    """Owns the callback heap, its timer task, its workers and their HTTP session."""

    def __init__(self, settings: Callable[[], SimulatorSettings], stats: Callable[[], Stats]):
        self._settings = settings
        self._stats = stats
        self._heap: list[_Job] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._validators: dict[str, RequestValidator] = {}

    @property
    def pending(self) -> int:
        """Callbacks scheduled or waiting for a worker."""
        return len(self._heap) + self._queue.qsize()

    async def start(self) -> None:
        """Open the session and start the timer and the worker pool."""
        workers = self._settings().callback_workers
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers))
        self._tasks.append(asyncio.create_task(self._timer(), name="sim-callback-timer"))
        for n in range(workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"sim-callback-{n}"))

    async def stop(self) -> None:
        """Cancel and await every task, then close the session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def schedule(self, record: MessageRecord, posts: list[tuple[float, Transition]]) -> None:
        """Queue the callbacks of one message."""
        for due, step in posts:
            self._push(_Job(due, 0, record, step))

    def clear(self) -> None:
        """Drop every callback not yet posted."""
        self._heap.clear()
        while not self._queue.empty():
            self._queue.get_nowait()

    def _push(self, job: _Job) -> None:
        self._seq += 1
        job.seq = self._seq
        heapq.heappush(self._heap, job)
        if self._heap[0] is job:
            self._wake.set()

    async def _timer(self) -> None:
        """Move due jobs from the heap to the worker queue."""
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self._heap[0].due - time.time()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            self._queue.put_nowait(heapq.heappop(self._heap))

    async def _worker(self) -> None:
        """Post queued callbacks one at a time, forever."""
        while True:
            job = await self._queue.get()
            try:
                await self._deliver(job)
            except Exception:
                _log.exception("simulator callback worker error", sid=job.record.sid)

    async def _deliver(self, job: _Job) -> None:
        """POST one signed callback; reschedule it on failure until attempts run out."""
        settings, stats = self._settings(), self._stats()
        url = job.record.status_callback
        if url is None or self._session is None:
            return
        if settings.callbacks_paused:
            stats.callbacks_lost_paused += 1
            return
        params = callback_params(job.record, job.step)
        headers = {
            "X-Twilio-Signature": self._signer(settings.auth_token).compute_signature(url, params)
        }
        timeout = aiohttp.ClientTimeout(total=settings.callback_timeout_s)
        try:
            async with self._session.post(
                url, data=params, headers=headers, timeout=timeout
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if 200 <= status < 300:
            stats.callbacks_posted += 1
            job.record.callbacks_posted.append(job.step.status)
        elif status == 0 or status >= 500:
            self._retry(job, settings, stats)
        else:
            stats.callbacks_dropped += 1

    def _retry(self, job: _Job, settings: SimulatorSettings, stats: Stats) -> None:
        """Try again later, or give up like Twilio does."""
        stats.callbacks_failed_attempts += 1
        if job.attempt >= settings.callback_max_attempts:
            stats.callbacks_dropped += 1
            return
        due = time.time() + settings.callback_retry_delay_ms / 1000
        self._push(_Job(due, 0, job.record, job.step, job.attempt + 1))

    def _signer(self, token: str) -> RequestValidator:
        validator = self._validators.get(token)
        if validator is None:
            validator = self._validators[token] = RequestValidator(token)
        return validator
