"""Admission lanes: a bounded number in flight, a short bounded queue, refusal beyond it; slots
pass to the oldest waiter; a waiter that gives up never keeps a slot; lanes' threads are apart.

Nothing here waits on a clock except the queue-timeout case, whose slot is never freed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from switchyard.dialog.admission import CpuGate, Lane, LaneLimits, Overloaded, ShedReason
from switchyard.errors import TransientError


class Recorder:
    """The lane's callbacks, as the runtime's metrics would see them."""

    def __init__(self) -> None:
        self.max_in_flight = 0
        self.max_waiting = 0
        self.shed: list[ShedReason] = []

    def changed(self, lane: Lane) -> None:
        self.max_in_flight = max(self.max_in_flight, lane.in_flight)
        self.max_waiting = max(self.max_waiting, lane.waiting)

    def refused(self, _: Lane, reason: ShedReason) -> None:
        self.shed.append(reason)


def lane(limits: LaneLimits, recorder: Recorder) -> Lane:
    return Lane("chat", limits, on_change=recorder.changed, on_shed=recorder.refused)


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_beyond_the_slots_and_the_queue_requests_are_refused_at_once() -> None:
    recorder = Recorder()
    chat = lane(LaneLimits(max_concurrency=2, queue_size=3, queue_timeout_seconds=60), recorder)

    async def main() -> tuple[list[Overloaded], int]:
        release = asyncio.Event()

        async def hold() -> None:
            async with chat.admit():
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(5)]
        await settle()
        assert (chat.in_flight, chat.waiting) == (2, 3)
        refused = []
        for _ in range(4):
            with pytest.raises(Overloaded) as err:
                async with chat.admit():
                    pass
            refused.append(err.value)
        release.set()
        await asyncio.gather(*holders)
        return refused, chat.in_flight

    refused, in_flight_after = asyncio.run(main())

    assert len(refused) == 4
    for exc in refused:
        assert isinstance(exc, TransientError)  # → 503 with Retry-After, like llm_busy
        assert exc.code == "overloaded"
        assert exc.retry_after_seconds == 60
        assert exc.reason is ShedReason.QUEUE_FULL
    assert recorder.shed == [ShedReason.QUEUE_FULL] * 4
    assert (recorder.max_in_flight, recorder.max_waiting) == (2, 3)
    assert in_flight_after == 0


def test_a_server_can_ask_for_the_refusal_before_reading_a_request() -> None:
    recorder = Recorder()
    chat = lane(LaneLimits(max_concurrency=1, queue_size=1, queue_timeout_seconds=60), recorder)

    async def main() -> tuple[Overloaded | None, Overloaded | None, Overloaded | None]:
        release = asyncio.Event()

        async def hold() -> None:
            async with chat.admit():
                await release.wait()

        first = asyncio.create_task(hold())
        await settle()
        with_room_in_queue = chat.refuse_if_full()
        second = asyncio.create_task(hold())
        await settle()
        full = chat.refuse_if_full()
        release.set()
        await asyncio.gather(first, second)
        return with_room_in_queue, full, chat.refuse_if_full()

    with_room_in_queue, full, after = asyncio.run(main())

    assert with_room_in_queue is None
    assert full is not None
    assert full.code == "overloaded"
    assert after is None
    assert recorder.shed == [ShedReason.QUEUE_FULL]  # counted like any refusal


def test_a_freed_slot_goes_to_the_oldest_waiter() -> None:
    recorder = Recorder()
    chat = lane(LaneLimits(max_concurrency=1, queue_size=10, queue_timeout_seconds=60), recorder)

    async def main() -> list[int]:
        order: list[int] = []
        gates = [asyncio.Event() for _ in range(4)]

        async def take(i: int) -> None:
            async with chat.admit():
                order.append(i)
                await gates[i].wait()

        tasks = []
        for i in range(4):
            tasks.append(asyncio.create_task(take(i)))
            await settle()  # arrive in order 0, 1, 2, 3
        for gate in gates:
            gate.set()
            await settle()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3]
    assert recorder.max_in_flight == 1
    assert recorder.shed == []


def test_a_waiter_that_times_out_is_refused_and_leaves_the_queue() -> None:
    recorder = Recorder()
    chat = lane(LaneLimits(max_concurrency=1, queue_size=1, queue_timeout_seconds=0.01), recorder)

    async def main() -> tuple[Overloaded, int, int]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(chat.admit())  # never freed while the waiter waits
            with pytest.raises(Overloaded) as err:
                async with chat.admit():
                    pass
            return err.value, chat.in_flight, chat.waiting

    exc, in_flight, waiting = asyncio.run(main())

    assert exc.reason is ShedReason.QUEUE_TIMEOUT
    assert exc.retry_after_seconds == 1  # at least one second
    assert (in_flight, waiting) == (1, 0)
    assert recorder.shed == [ShedReason.QUEUE_TIMEOUT]


def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    recorder = Recorder()
    chat = lane(LaneLimits(max_concurrency=1, queue_size=2, queue_timeout_seconds=60), recorder)

    async def main() -> tuple[bool, bool, int]:
        got: dict[str, bool] = {"a": False, "b": False}

        async def take(name: str) -> None:
            async with chat.admit():
                got[name] = True

        async with AsyncExitStack() as stack:
            await stack.enter_async_context(chat.admit())
            a = asyncio.create_task(take("a"))
            b = asyncio.create_task(take("b"))
            await settle()
            assert chat.waiting == 2
        # The holder's slot was just handed to ``a``, which has not run yet: cancel it now.
        a.cancel()
        await asyncio.gather(a, b, return_exceptions=True)
        return got["a"], got["b"], chat.in_flight

    a_got, b_got, in_flight = asyncio.run(main())

    assert (a_got, b_got) == (False, True)
    assert in_flight == 0
    assert recorder.max_in_flight == 1


def test_a_lane_runs_work_on_its_own_threads() -> None:
    blocked = threading.Event()
    chat = Lane("chat", LaneLimits(1, 0, 1.0))
    canary = Lane("canary", LaneLimits(1, 0, 1.0))

    async def main() -> str:
        stuck = asyncio.ensure_future(chat.run(blocked.wait))  # chat's only thread is taken
        try:
            return await canary.run(lambda: threading.current_thread().name)
        finally:
            blocked.set()
            await stuck
            chat.close()
            canary.close()

    assert asyncio.run(main()).startswith("lane-canary")


def test_a_probe_waiting_for_the_cpu_goes_before_waiting_chat_stages() -> None:
    gate = CpuGate(slots=1)
    order: list[str] = []

    def stage(name: str, *, urgent: bool) -> None:
        with gate.hold(urgent=urgent):
            order.append(name)

    def until_waiting(n: int) -> None:
        while gate.waiting < n:
            threading.Event().wait(0.001)

    with gate.hold():  # a chat stage running
        threads = []
        for name, urgent in [("chat-1", False), ("chat-2", False), ("canary", True)]:
            threads.append(threading.Thread(target=stage, args=(name,), kwargs={"urgent": urgent}))
            threads[-1].start()
            until_waiting(len(threads))
    for t in threads:
        t.join()

    assert order[0] == "canary"
    assert sorted(order[1:]) == ["chat-1", "chat-2"]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: LaneLimits(0, 1, 1.0), "max_concurrency"),
        (lambda: LaneLimits(1, -1, 1.0), "queue_size"),
        (lambda: LaneLimits(1, 1, 0.0), "queue_timeout_seconds"),
        (lambda: CpuGate(0), "slots"),
    ],
)
def test_limits_are_checked(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()
