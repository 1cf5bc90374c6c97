"""The per-target byte budget: bytes in flight stay within it, big objects run alone, nobody starves."""

from __future__ import annotations

import asyncio
import random

import pytest

from airflow_ais_etl.dataplane.budget import DEFAULT_TARGET_BUDGET, ByteBudget, check_budget
from airflow_ais_etl.etl.errors import ValidationError

MiB = 1 << 20


class Watch:
    """Counts bytes and objects per target as the callers see them (independent of the budget's own)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes: dict[str, int] = {}
        self.objects: dict[str, int] = {}
        self.violations: list[tuple[str, int, int]] = []
        self.done: list[int] = []

    async def run(self, budget: ByteBudget[str], size: int, hold: int, tag: int) -> None:
        target = await budget.acquire(size)
        self.bytes[target] = self.bytes.get(target, 0) + size
        self.objects[target] = self.objects.get(target, 0) + 1
        alone = self.objects[target] == 1
        if self.bytes[target] > self.limit and not alone:
            self.violations.append((target, self.bytes[target], self.objects[target]))
        for _ in range(hold):
            await asyncio.sleep(0)
        self.bytes[target] -= size
        self.objects[target] -= 1
        budget.release(target, size)
        self.done.append(tag)


@pytest.mark.asyncio
async def test_bytes_in_flight_never_exceed_the_budget_and_every_object_gets_through() -> None:
    rng = random.Random(7)
    limit = 128 * MiB
    budget = ByteBudget(["t1", "t2"], limit)
    watch = Watch(limit)
    sizes = [rng.choice([4 << 10, 3 * MiB, 64 * MiB, 100 * MiB, 300 * MiB]) for _ in range(300)]
    await asyncio.gather(*(watch.run(budget, s, rng.randint(0, 5), i) for i, s in enumerate(sizes)))
    assert watch.violations == []
    assert sorted(watch.done) == list(range(len(sizes)))
    # the budget's own counters agree: within the limit, except an oversized object alone
    assert all(peak <= 300 * MiB for peak in budget.peak().values())
    assert budget.in_flight("t1") == budget.in_flight("t2") == 0


@pytest.mark.asyncio
async def test_an_object_larger_than_the_budget_runs_alone() -> None:
    budget = ByteBudget(["only"], 10 * MiB)
    big = await budget.acquire(50 * MiB)  # an idle target takes it whatever its size
    small = asyncio.ensure_future(budget.acquire(1))
    await asyncio.sleep(0)
    assert not small.done()  # nothing runs beside the oversized object
    budget.release(big, 50 * MiB)
    assert await small == "only"
    assert budget.peak() == {"only": 50 * MiB}


@pytest.mark.asyncio
async def test_waiters_are_admitted_in_arrival_order_so_a_big_object_is_not_starved() -> None:
    budget = ByteBudget(["a"], 4)
    first = await budget.acquire(3)
    big = asyncio.ensure_future(budget.acquire(4))  # waits for 3 bytes to leave
    await asyncio.sleep(0)
    late = asyncio.ensure_future(budget.acquire(1))  # would fit now, but queues behind the big one
    await asyncio.sleep(0)
    assert not big.done()
    assert not late.done()
    budget.release(first, 3)
    await asyncio.sleep(0)
    assert big.done()
    assert not late.done()
    budget.release(await big, 4)
    assert await late == "a"


@pytest.mark.asyncio
async def test_the_least_loaded_target_is_chosen() -> None:
    budget = ByteBudget(["a", "b"], 100)
    assert await budget.acquire(60) == "a"
    assert await budget.acquire(10) == "b"
    assert await budget.acquire(10) == "b"
    assert await budget.acquire(50) == "b"  # 20 + 50 fits on b, a has 60 in flight
    assert (budget.in_flight("a"), budget.in_flight("b")) == (60, 70)


@pytest.mark.asyncio
async def test_a_cancelled_waiter_gives_back_nothing_it_did_not_get() -> None:
    budget = ByteBudget(["a"], 10)
    held = await budget.acquire(10)
    waiter = asyncio.ensure_future(budget.acquire(5))
    behind = asyncio.ensure_future(budget.acquire(5))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    budget.release(held, 10)
    assert await behind == "a"
    assert budget.in_flight("a") == 5


@pytest.mark.parametrize("bad", [0, -1, 1.5, "128", True, None])
def test_a_bad_budget_says_what_to_give(bad: object) -> None:
    with pytest.raises(ValidationError, match="bytes_in_flight must be a positive integer"):
        check_budget(bad)
    assert check_budget(DEFAULT_TARGET_BUDGET) == 128 * MiB


@pytest.mark.asyncio
async def test_try_acquire_takes_room_now_or_says_none_and_never_jumps_the_queue() -> None:
    budget = ByteBudget(["a", "b"], 10 * MiB)
    assert budget.try_acquire(8 * MiB) == "a"
    assert budget.try_acquire(8 * MiB) == "b"
    assert budget.try_acquire(4 * MiB) is None  # no target has room: nothing taken
    waiter = asyncio.create_task(budget.acquire(9 * MiB))
    await asyncio.sleep(0)
    budget.release("a", 8 * MiB)
    assert await waiter == "a"
    budget.release("b", 8 * MiB)
    assert budget.try_acquire(1 * MiB) == "b"
    queued = asyncio.create_task(budget.acquire(10 * MiB))  # waits: "a" holds 9, "b" holds 1
    await asyncio.sleep(0)
    assert budget.try_acquire(0) is None  # someone waits: a try never overtakes
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued


def test_a_group_goes_to_the_least_loaded_target_as_far_as_it_fits_there() -> None:
    budget = ByteBudget(["t1", "t2"], 10 * MiB)
    assert budget.try_acquire(3 * MiB) == "t1"
    # t2 is idle: the group starts there and takes objects while t2 stays within its 10 MiB
    assert budget.try_acquire_leading([4 * MiB, 4 * MiB, 4 * MiB, 1]) == ("t2", 2)
    assert budget.in_flight("t2") == 8 * MiB
    # the rest: t1 (3 MiB) is now the least loaded and has room for one 4 MiB object and the tiny one
    assert budget.try_acquire_leading([4 * MiB, 4 * MiB]) == ("t1", 1)
    assert budget.in_flight("t1") == 7 * MiB
    budget.release_many("t2", 8 * MiB, 2)
    budget.release("t1", 3 * MiB)
    budget.release_many("t1", 4 * MiB, 1)
    assert budget.in_flight("t1") == budget.in_flight("t2") == 0
    assert budget.peak() == {"t1": 7 * MiB, "t2": 8 * MiB}


def test_a_group_whose_first_object_fits_nowhere_is_not_admitted_now() -> None:
    budget = ByteBudget(["t1"], 10 * MiB)
    assert budget.try_acquire_leading([9 * MiB]) == ("t1", 1)
    assert budget.try_acquire_leading([2 * MiB, 1]) is None  # the first comes first: no skipping ahead
    assert budget.try_acquire_leading([]) is None
    # an object larger than the budget goes alone on an idle target, and nothing joins it
    budget.release_many("t1", 9 * MiB, 1)
    assert budget.try_acquire_leading([50 * MiB, 1]) == ("t1", 1)


@pytest.mark.asyncio
async def test_a_waiting_group_is_admitted_when_room_comes_back_and_takes_what_fits_then() -> None:
    budget = ByteBudget(["t1"], 10 * MiB)
    held = await budget.acquire(8 * MiB)
    group = asyncio.ensure_future(budget.acquire_leading([5 * MiB, 5 * MiB, 5 * MiB]))
    await asyncio.sleep(0)
    assert not group.done()
    assert budget.try_acquire_leading([1]) is None  # somebody waits: nobody jumps the queue
    budget.release(held, 8 * MiB)
    assert await group == ("t1", 2)
    assert budget.in_flight("t1") == 10 * MiB
    budget.release_many("t1", 10 * MiB, 2)
    assert budget.in_flight("t1") == 0
