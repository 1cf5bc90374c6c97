"""The batch framing (runtime.http1.batchwire) and the pod's per-object verdicts (runtime.batch)."""

from __future__ import annotations

import pytest

from airflow_ais_etl.runtime.batch import run_batch
from airflow_ais_etl.runtime.http1.batchwire import (
    NOT_RUN,
    BatchFormatError,
    decode_items,
    decode_results,
    encode_items,
    encode_results,
)

ITEMS = [("/b/empty", b""), ("/b/ünï cödé?#%", b"x" * 4096), ("/b/nested/dir/obj", bytes(range(256)) * 3)]


def test_items_and_results_survive_the_framing_byte_exact() -> None:
    body = encode_items(ITEMS)
    assert [(path, bytes(data)) for path, data in decode_items(body, len(ITEMS))] == ITEMS
    results = [(200, b"abc"), (500, "boom ü".encode()), (NOT_RUN, b""), (200, b"")]
    assert decode_results(b"".join(encode_results(results)), len(results)) == results


@pytest.mark.parametrize("cut", [1, 7, 9, 20])
def test_a_cut_or_miscounted_body_is_refused(cut: int) -> None:
    body = encode_items(ITEMS)
    with pytest.raises(BatchFormatError, match="cut"):
        decode_items(body[:-cut], len(ITEMS))
    with pytest.raises(BatchFormatError, match="announces 2 object"):
        decode_items(body, 2)
    answer = b"".join(encode_results([(200, b"abcdefghijklmnopqrstuvwxyz")]))
    with pytest.raises(BatchFormatError, match="cut"):
        decode_results(answer[:-cut], 1)
    with pytest.raises(BatchFormatError, match="expected 2"):
        decode_results(answer, 2)


def _upper_or_fail(path: str, query: str, data: bytes) -> tuple[int, bytes]:
    if b"fail" in data:
        return 500, f"transform failed for {path!r}".encode()
    return 200, data.upper() + query.encode()


def test_every_object_gets_its_own_verdict() -> None:
    items = [("/b/a", b"one"), ("/b/b", b"please fail"), ("/b/c", b"three")]
    results = run_batch(_upper_or_fail, "3", "q", encode_items(items))
    assert results == [(200, b"ONEq"), (500, b"transform failed for '/b/b'"), (200, b"THREEq")]


def test_objects_after_the_time_budget_are_left_for_requests_of_their_own() -> None:
    calls: list[str] = []

    def slow(path: str, query: str, data: bytes) -> tuple[int, bytes]:
        calls.append(path)
        return 200, data

    items = [(f"/b/{i}", b"x") for i in range(4)]
    results = run_batch(slow, "4", "", encode_items(items), budget=-1.0)  # the budget is spent at once
    assert calls == ["/b/0"]  # the first object always runs, so a batch always makes progress
    assert [status for status, _ in results] == [200, NOT_RUN, NOT_RUN, NOT_RUN]


@pytest.mark.parametrize("count", ["0", "-1", "x", "99999"])
def test_a_bad_object_count_is_refused(count: str) -> None:
    with pytest.raises(BatchFormatError, match="object count"):
        run_batch(_upper_or_fail, count, "", encode_items(ITEMS))


def test_objects_after_the_output_budget_are_left_for_requests_of_their_own() -> None:
    def inflate(path: str, query: str, data: bytes) -> tuple[int, bytes]:
        return 200, data * 1000

    items = [(f"/b/{i}", b"0123456789") for i in range(5)]
    results = run_batch(inflate, "5", "", encode_items(items), budget=60.0, output_bytes=25_000)
    assert [status for status, _ in results] == [200, 200, 200, NOT_RUN, NOT_RUN]
    assert results[0][1] == b"0123456789" * 1000
