"""The counting gate of the fd transport: never more than its size taken, first come first served."""

from __future__ import annotations

import asyncio

import pytest

from airflow_ais_etl.dataplane.room import Room


@pytest.mark.asyncio
async def test_takes_never_exceed_the_size_and_every_taker_gets_through() -> None:
    room = Room(8)
    taken, peak, done = 0, 0, []

    async def one(units: int, tag: int) -> None:
        nonlocal taken, peak
        await room.take(units)
        taken += units
        peak = max(peak, taken)
        for _ in range(3):
            await asyncio.sleep(0)
        taken -= units
        room.give(units)
        done.append(tag)

    await asyncio.gather(*(one(1 + tag % 8, tag) for tag in range(40)))
    assert peak <= 8
    assert sorted(done) == list(range(40))
    assert room.free == 8


@pytest.mark.asyncio
async def test_a_big_take_is_not_starved_by_small_ones_after_it() -> None:
    room = Room(4)
    await room.take(3)
    order: list[str] = []

    async def take(units: int, tag: str) -> None:
        await room.take(units)
        order.append(tag)

    big = asyncio.create_task(take(4, "big"))
    await asyncio.sleep(0)
    small = asyncio.create_task(take(1, "small"))  # would fit now, but the big one came first
    await asyncio.sleep(0)
    assert order == []
    room.give(3)
    await big
    assert order == ["big"]
    room.give(4)
    await small
    assert order == ["big", "small"]


@pytest.mark.asyncio
async def test_a_cancelled_taker_gives_back_nothing_it_did_not_get() -> None:
    room = Room(2)
    await room.take(2)
    waiter = asyncio.create_task(room.take(2))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    room.give(2)
    assert room.free == 2
    await room.take(2)  # nobody left waiting in front


def test_takes_outside_the_size_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        Room(0)
    room = Room(2)
    for units in (0, 3):
        with pytest.raises(ValueError, match=f"cannot take {units} unit"):
            asyncio.run(room.take(units))
