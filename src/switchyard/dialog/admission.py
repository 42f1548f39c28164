"""Admission control for the dialog runtime: load is shed before it can look like death.

A :class:`Lane` admits at most ``max_concurrency`` requests of one kind at once and lets at most
``queue_size`` more wait, each for at most ``queue_timeout_seconds``; anything beyond is refused
at once with :class:`Overloaded` (503 ``overloaded`` with ``Retry-After``). Each lane runs its
blocking work on its own threads (``run``), so one kind of request never waits in a queue that
another fills: chat has its lane, the canary its own small one, and ``/healthz`` needs none.

Invariants: ``in_flight <= max_concurrency`` and ``waiting <= queue_size`` at every moment; a
freed slot goes to the oldest waiter (first come, first served); a waiter that gives up (timeout,
cancellation) leaves the queue and never holds a slot.

Lanes keep requests from waiting in each other's queues; the CPU they share is divided by a
:class:`CpuGate`: chat's CPU-heavy stages (embedding, search) take turns through it, and a
probe's stage waiting for it goes before every waiting chat stage.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from switchyard.errors import TransientError

T = TypeVar("T")


class ShedReason(StrEnum):
    """Why a request was refused; stable values for metric labels."""

    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"


class Overloaded(TransientError):  # noqa: N818 - named like LlmBusy: the condition, not "Error"
    """The lane is full: retry after ``retry_after_seconds`` (GSLB or the client's backoff)."""

    code = "overloaded"

    def __init__(self, lane: str, reason: ShedReason, retry_after_seconds: int) -> None:
        self.lane = lane
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds
        what = "queue is full" if reason is ShedReason.QUEUE_FULL else "no slot freed in time"
        super().__init__(f"{lane} overloaded: {what}; retry after {retry_after_seconds}s")


@dataclass(frozen=True, slots=True)
class LaneLimits:
    """How much of one kind of request a runtime takes on.

    Invariants (checked, ``ValueError`` naming the field): ``max_concurrency >= 1``,
    ``queue_size >= 0``, ``queue_timeout_seconds > 0``.
    """

    max_concurrency: int
    queue_size: int
    queue_timeout_seconds: float

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("LaneLimits.max_concurrency: must be at least 1")
        if self.queue_size < 0:
            raise ValueError("LaneLimits.queue_size: must not be negative")
        if not self.queue_timeout_seconds > 0:
            raise ValueError("LaneLimits.queue_timeout_seconds: must be positive")

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` for a shed request: one queue window, at least a second."""
        return max(1, math.ceil(self.queue_timeout_seconds))


class Lane:
    """One kind of request's admission and threads; see the module invariants.

    Used from one event loop at a time (the server's); ``on_change`` is called after every
    change of ``in_flight`` or ``waiting`` and ``on_shed`` for every refusal (metrics).
    """

    def __init__(
        self,
        name: str,
        limits: LaneLimits,
        *,
        on_change: Callable[[Lane], None] | None = None,
        on_shed: Callable[[Lane, ShedReason], None] | None = None,
    ) -> None:
        self.name = name
        self.limits = limits
        self._on_change = on_change
        self._on_shed = on_shed
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def refuse_if_full(self) -> Overloaded | None:
        """The refusal ``admit`` would give at once (counted as shed), or None: lets a server
        refuse before it reads or validates anything — under overload most requests are
        refused, so a refusal must cost next to nothing."""
        full = self._in_flight >= self.limits.max_concurrency
        if not (full and len(self._waiters) >= self.limits.queue_size):
            return None
        return self._refusal(ShedReason.QUEUE_FULL)

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold one slot for the block; :class:`Overloaded` when none is to be had."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run blocking ``fn`` on this lane's own threads (one per slot)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.limits.max_concurrency, thread_name_prefix=f"lane-{self.name}"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        """Let the lane's threads end once idle; a later ``run`` starts new ones."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _acquire(self) -> None:
        if self._in_flight < self.limits.max_concurrency and not self._waiters:
            self._in_flight += 1
            self._changed()
            return
        if len(self._waiters) >= self.limits.queue_size:
            raise self._refusal(ShedReason.QUEUE_FULL)
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        self._changed()
        try:
            await asyncio.wait({slot}, timeout=self.limits.queue_timeout_seconds)
        except BaseException:  # cancelled while waiting: give back a slot handed over meanwhile
            if not self._leave(slot):
                self._release()
            raise
        if not self._leave(slot):
            return  # ``_release`` handed its slot to this waiter (in_flight already counts it)
        raise self._refusal(ShedReason.QUEUE_TIMEOUT)

    def _leave(self, slot: asyncio.Future[None]) -> bool:
        """Take ``slot`` out of the queue unless it was granted; True when it was not."""
        if slot.done():
            return False
        slot.cancel()
        self._waiters.remove(slot)
        self._changed()
        return True

    def _release(self) -> None:
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot passes on; in_flight is unchanged
                self._changed()
                return
        self._in_flight -= 1
        self._changed()

    def _refusal(self, reason: ShedReason) -> Overloaded:
        """The error to refuse with, counted as shed."""
        if self._on_shed is not None:
            self._on_shed(self, reason)
        return Overloaded(self.name, reason, self.limits.retry_after_seconds)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)


class CpuGate:
    """At most ``slots`` CPU-heavy stages run at once, across lanes; ``urgent`` ones (probes)
    waiting for a slot get the next one before any other waiter.

    Why a gate and not more threads: one thread runs Python at a time (the GIL) and torch
    already spreads one encode over every core, so more stages at once only make each of them
    slower — a probe's among them. Through the gate a probe waits for at most the stages
    running when it arrives. Blocking: call it from worker threads, never the event loop.
    """

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("CpuGate.slots: must be at least 1")
        self._slots = slots
        self._busy = 0
        self._waiting = 0
        self._urgent_waiting = 0
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        with self._changed:
            return self._waiting

    @contextmanager
    def hold(self, *, urgent: bool = False) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            self._urgent_waiting += int(urgent)
            try:
                while self._busy >= self._slots or (not urgent and self._urgent_waiting):
                    self._changed.wait()
            finally:
                self._waiting -= 1
                self._urgent_waiting -= int(urgent)
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()


# What one probe needs is small; a few at once from every vantage point fit with room to spare.
CANARY_LIMITS = LaneLimits(max_concurrency=2, queue_size=8, queue_timeout_seconds=1.0)


@dataclass(frozen=True, slots=True)
class ServingLimits:
    """The runtime's lanes. ``chat`` comes from settings (``SWITCHYARD_CHAT_*``); the defaults
    keep a 2-core machine busy without letting chat starve the probes."""

    chat: LaneLimits = LaneLimits(max_concurrency=2, queue_size=8, queue_timeout_seconds=2.0)
    canary: LaneLimits = CANARY_LIMITS
