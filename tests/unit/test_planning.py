"""Streaming plans, hash shards and the compact resume index, without pods or servers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.dataplane.jobstats import JobStats
from airflow_ais_etl.dataplane.journal import Journal
from airflow_ais_etl.dataplane.planning import Feed, in_shard, select
from airflow_ais_etl.dataplane.resumeindex import ResumeIndex
from airflow_ais_etl.dataplane.storage.base import ObjInfo
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.etl.errors import StorageError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def bucket_of(root: Path, names: list[str]) -> LocalBucket:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    return LocalBucket(str(root))


NAMES = [f"obj-{i:04d}.bin" for i in range(300)] + [f"d{i % 7}/x-{i}.bin" for i in range(100)]


def test_hash_shards_partition_the_selection(tmp_path: Path) -> None:
    """Every object lands in exactly one shard, and shards are of about equal size."""
    src = bucket_of(tmp_path, NAMES)
    everything = [i.name for i in select(src)]
    assert everything == sorted(NAMES)
    shards = [[i.name for i in select(src, shard=(k, 4))] for k in range(4)]
    assert sorted(n for s in shards for n in s) == everything
    assert all(s == sorted(s) for s in shards)  # each shard keeps the listing order
    assert min(map(len, shards)) > len(NAMES) / 4 * 0.7
    assert [i.name for i in select(src, shard=(0, 1))] == everything
    listed = ["obj-0001.bin", "obj-0002.bin", "obj-0003.bin", "nope"]
    split = [[i.name for i in select(src, objects=listed, shard=(k, 2))] for k in range(2)]
    assert sorted(split[0] + split[1]) == sorted(listed)
    templ = [[i.name for i in select(src, template="obj-{0000..0099}.bin", shard=(k, 3))] for k in range(3)]
    assert sorted(n for s in templ for n in s) == [f"obj-{i:04d}.bin" for i in range(100)]


def test_shard_hash_is_stable() -> None:
    """Shards must not move between runs, processes or hosts (resume depends on it): CRC-32."""
    assert [in_shard("obj-0001.bin", (k, 3)) for k in range(3)].count(True) == 1
    assert in_shard("obj-0001.bin", (1020186852 % 3, 3))  # crc32(b"obj-0001.bin")


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        ((3, 3), "between 0 and 2"),
        ((-1, 2), "between 0 and 1"),
        ((0, 0), "at least 1"),
        ((0,), "pair"),
        ("0/2", "pair"),
        ((0.5, 2), "integer"),
        ((True, 2), "integer"),
    ],
)
def test_shard_validation(shard: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OfflineOptions(shard=shard).validate()  # type: ignore[arg-type]


async def drain(feed: Feed) -> list[str]:
    out = []
    while (info := await feed.next()) is not None:
        out.append(info.name)
    return out


def test_feed_streams_counts_and_ends() -> None:
    """The feed hands every item over in order, counts as it goes and says when listing ended."""
    items = [ObjInfo(f"n{i:05d}", i, "") for i in range(2500)]

    async def main() -> None:
        stats = JobStats("e", "s", "d", dry_run=False)
        feed = Feed(iter(items), stats, batch=100, depth=2)
        await feed.prime()
        assert stats.listing
        assert stats.planned_objects <= 300
        workers = [asyncio.create_task(drain(feed)) for _ in range(4)]
        got = [n for names in await asyncio.gather(*workers) for n in names]
        feed.close()
        assert sorted(got) == [i.name for i in items]
        assert (stats.planned_objects, stats.planned_bytes) == (2500, sum(range(2500)))
        assert not stats.listing
        assert stats.snapshot()["listing"] is False

        empty = Feed(iter([]), stats)
        assert await drain(empty) == []
        empty.close()

    asyncio.run(main())


def test_planned_bytes_leave_out_missing_objects() -> None:
    """An explicitly named object that does not exist (size -1) counts as an object, not as -1 bytes."""
    items = [ObjInfo("a", 10, ""), ObjInfo("missing", -1, ""), ObjInfo("b", 0, ""), ObjInfo("c", 5, "")]

    async def main() -> None:
        stats = JobStats("e", "s", "d", dry_run=False)
        feed = Feed(iter(items), stats, batch=2)
        assert await drain(feed) == ["a", "missing", "b", "c"]
        feed.close()
        assert (stats.planned_objects, stats.planned_bytes) == (4, 15)

    asyncio.run(main())


def test_feed_raises_a_listing_error_and_stops_early_without_leaking() -> None:
    def broken() -> Iterator[ObjInfo]:
        yield ObjInfo("a", 1, "")
        raise StorageError("cannot list: gone")

    def endless() -> Iterator[ObjInfo]:
        i = 0
        while True:
            i += 1
            yield ObjInfo(f"x{i}", 1, "")

    async def main() -> None:
        feed = Feed(broken(), batch=1)
        assert (await feed.next()).name == "a"  # type: ignore[union-attr]
        with pytest.raises(StorageError, match="gone"):
            await feed.next()
        feed.close()
        early = Feed(endless(), batch=10, depth=2)
        assert (await early.next()) is not None
        early.close()
        assert not early._thread.is_alive()

    asyncio.run(main())


def test_a_prefix_outside_the_bucket_fails_at_prime(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "b" / "link").symlink_to(tmp_path / "outside")

    async def main() -> None:
        feed = Feed(select(LocalBucket(str(tmp_path / "b")), prefix="link/x"))
        with pytest.raises(StorageError, match="outside"):
            await feed.prime()
        feed.close()

    asyncio.run(main())


def test_resume_index_matches_only_the_same_triple_and_filters_by_shard(tmp_path: Path) -> None:
    dst = LocalBucket(str(tmp_path))
    journal = Journal(dst, "etl", "fp")
    for i in range(50):
        journal.record(f"s{i}", f"v{i}", f"d{i}")
    journal.flush()
    index = journal.load_index()
    assert len(index) == 50
    assert index.has("s7", "v7", "d7")
    assert not index.has("s7", "v8", "d7")
    assert not index.has("s7", "v7", "d8")
    assert not index.has("s99", "", "")
    mine = journal.load_index(lambda name: in_shard(name, (1, 2)))
    assert {f"s{i}" for i in range(50) if mine.has(f"s{i}", f"v{i}", f"d{i}")} == {
        f"s{i}" for i in range(50) if in_shard(f"s{i}", (1, 2))
    }
    assert not ResumeIndex()
    assert not ResumeIndex().has("s1", "v1", "d1")


def test_progress_says_listing_until_the_total_is_known() -> None:
    from airflow_ais_etl.dataplane.progress import progress_line

    stats = JobStats("e", "s", "d", dry_run=False)
    stats.listing, stats.planned_objects, stats.objects = True, 2048, 100
    snap = stats.snapshot()
    assert snap["eta"] is None
    assert progress_line(snap).startswith("100/2048+ objects (listing…)")
    stats.listing = False
    assert progress_line(stats.snapshot()).startswith("100/2048 objects (4.9%)")


def test_feed_skips_done_objects_in_the_listing_thread_and_counts_them() -> None:
    items = [ObjInfo(f"n{i:04d}", 10, "") for i in range(1000)]

    async def main() -> None:
        stats = JobStats("e", "s", "d", dry_run=False)
        feed = Feed(iter(items), stats, batch=64, depth=2)
        feed.skip = lambda info: int(info.name[1:]) % 3 != 0
        got = await drain(feed)
        feed.close()
        # batches handed over before ``skip`` was set come unfiltered (the engine checks those itself)
        assert set(got) >= {i.name for i in items if int(i.name[1:]) % 3 == 0}
        assert (stats.planned_objects, stats.planned_bytes) == (1000, 10_000)
        assert stats.skipped == 1000 - len(got)
        assert stats.skipped >= 1000 * 2 // 3 - 3 * 64  # at most the queued batches went unfiltered

    asyncio.run(main())


def test_feed_take_ready_hands_out_listed_objects_without_waiting_and_none_twice() -> None:
    items = [ObjInfo(f"o{i:04d}", i, "") for i in range(250)]

    async def main() -> None:
        feed = Feed(iter(items), JobStats("e", "s", "d", dry_run=False), batch=100, depth=2)
        got: list[str] = []
        while (info := await feed.next()) is not None:
            got.append(info.name)
            got.extend(i.name for i in feed.take_ready(31))
        assert feed.take_ready(31) == []
        feed.close()
        assert got == [i.name for i in items]  # each once, in listing order

    asyncio.run(main())
