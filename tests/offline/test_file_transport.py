"""The file transport end to end: local pods read and write the objects in place, results stay byte-exact.

Real pods (the project's runtime under the local backend), real files, real jobs. The job stats say
which transport carried each object (``file_objects``, ``bytes_via_engine``).
"""

from __future__ import annotations

import hashlib
import os
import signal
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import AbortError
from tests.offline.conftest import REVERSE, UPPER_CHUNKED, objects, temp_files, tree_hashes, when

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

REFUSE_SOME = (
    "def transform(data):\n"
    "    if data.startswith(b'bad'):\n"
    "        raise ValueError('refused ' + str(len(data)))\n"
    "    return data[::-1] + b'!'\n"
)
SLOW_UPPER = "import time\n\ndef transform(data):\n    time.sleep(0.02)\n    return data.upper()\n"
WITH_CONTEXT = "def transform(data, path, etl_args):\n    return path.encode() + b'|' + etl_args.encode() + b'|' + data\n"


def _payload(i: int, size: int) -> bytes:
    return (hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1))[:size]


def _tree(root: Path, sizes: list[int]) -> dict[str, bytes]:
    data = {}
    for i, size in enumerate(sizes):
        name = f"d{i % 3}/o-{i:04d}.bin" if i % 4 else f"o-{i:04d}.bin"
        data[name] = _payload(i, size)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data[name])
    return data


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_small_batched_and_1mib_objects_are_byte_exact_and_carry_no_byte_through_the_engine(
    api: AisEtl, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    sizes = [(0, 1, 4096, 60_000, 1 << 20, (1 << 20) + 17)[i % 6] for i in range(150)]
    data = _tree(src, sizes)
    before = tree_hashes(src)
    api.init_code("fd-etl", REVERSE)
    fds_before = _open_fds()
    stats = api.transform_bucket("fd-etl", str(src), str(dst), OfflineOptions(num_workers=4))
    assert _open_fds() == fds_before  # every descriptor of the job is closed again
    assert objects(dst) == {n: p[::-1] + b"!" for n, p in data.items()}
    assert stats["file_objects"] == len(data) == stats["objects"]
    assert stats["bytes_via_engine"] == 0
    assert stats["bytes_in"] == sum(sizes)
    assert stats["bytes_out"] == sum(sizes) + len(data)
    assert stats["direct_put_objects"] == 0
    assert temp_files(dst) == []
    assert tree_hashes(src) == before
    api.stop("fd-etl")


def test_batches_under_a_tiny_byte_budget_and_missing_objects_settle_each_object_on_its_own(
    api: AisEtl, tmp_path: Path
) -> None:
    """Workers take objects in batches: what the budget cannot take now waits for the next round
    (no worker waits while it holds budget), and a missing object fails alone."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = _tree(src, [(100, 4096, 9000)[i % 3] for i in range(120)])
    api.init_code("fd-budget-etl", REVERSE)
    options = OfflineOptions(num_workers=3, bytes_in_flight=8192)
    stats = api.transform_bucket("fd-budget-etl", str(src), str(dst), options)
    assert objects(dst) == {n: p[::-1] + b"!" for n, p in data.items()}
    assert stats["file_objects"] == len(data) == stats["objects"]
    listed = sorted(data)[:40]
    again = OfflineOptions(objects=[*listed[:20], "gone.bin", *listed[20:]], continue_on_error=True)
    stats = api.transform_bucket("fd-budget-etl", str(src), str(tmp_path / "dst2"), again)
    assert [e["object"] for e in stats["errors"]] == ["gone.bin"]
    assert stats["objects"] == 40
    assert objects(tmp_path / "dst2") == {n: data[n][::-1] + b"!" for n in listed}
    assert temp_files(dst) == temp_files(tmp_path / "dst2") == []
    api.stop("fd-budget-etl")


def test_streamed_objects_and_ais_context_arguments_are_what_http_would_give(
    api: AisEtl, tmp_path: Path
) -> None:
    src, dst, dst2 = tmp_path / "src", tmp_path / "dst", tmp_path / "dst2"
    data = _tree(src, [0, 5, 70_000, 3 << 20, (1 << 20) + 1])
    api.init_code("fd-stream", UPPER_CHUNKED, chunk_size=65536)
    stats = api.transform_bucket("fd-stream", str(src), str(dst), OfflineOptions())
    assert objects(dst) == {n: p.upper() for n, p in data.items()}
    assert stats["file_objects"] == len(data)
    assert stats["bytes_via_engine"] == 0
    api.stop("fd-stream")

    api.init_code("fd-context", WITH_CONTEXT)
    stats = api.transform_bucket("fd-context", str(src), str(dst2), OfflineOptions(etl_args="k=v"))
    assert stats["file_objects"] == len(data)
    got = objects(dst2)
    for name, payload in data.items():
        path, args, rest = got[name].split(b"|", 2)
        assert path.endswith(b"/" + name.encode())
        assert args == b"k=v"
        assert rest == payload
    api.stop("fd-context")


def test_failing_objects_leave_nothing_and_the_source_unchanged(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    sizes = [(10, 4096, 200_000, 2 << 20)[i % 4] for i in range(60)]
    data = _tree(src, sizes)
    bad = sorted(name for i, name in enumerate(data) if i % 7 == 3)
    for name in bad:
        data[name] = b"bad" + data[name]
        (src / name).write_bytes(data[name])
    before = tree_hashes(src)
    api.init_code("fd-refuse", REFUSE_SOME)
    stats = api.transform_bucket(
        "fd-refuse", str(src), str(dst), OfflineOptions(continue_on_error=True, num_workers=4)
    )
    assert sorted(e["object"] for e in stats["errors"]) == bad
    for err in stats["errors"]:
        assert "pod answered 500 Internal Server Error: transform failed for" in err["error"], err
        assert "ValueError: refused" in err["error"], err
    assert objects(dst) == {n: p[::-1] + b"!" for n, p in data.items() if n not in bad}
    assert stats["file_objects"] == len(data) - len(bad)
    assert temp_files(dst) == []
    assert tree_hashes(src) == before

    with pytest.raises(Exception, match="ValueError: refused"):  # without continue_on_error: the job fails
        api.transform_bucket("fd-refuse", str(src), str(tmp_path / "dst2"), OfflineOptions())
    assert temp_files(tmp_path / "dst2") == []
    api.stop("fd-refuse")


def test_a_pod_killed_mid_job_aborts_it_with_the_usual_cause_and_leaves_no_temp_file_or_fd(
    api: AisEtl, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = {f"o-{i:04d}.dat": f"payload {i} ".encode() * (1 + i % 7) for i in range(400)}
    src.mkdir()
    for name, payload in data.items():
        (src / name).write_bytes(payload)
    before = tree_hashes(src)
    api.init_code("fd-kill", SLOW_UPPER)

    def kill() -> None:
        pod = api.backend._pods("fd-kill")["t1"]  # type: ignore[attr-defined]
        os.kill(pod.containers[0].pid(), signal.SIGKILL)

    fds_before = _open_fds()
    when(lambda: len(objects(dst)) >= 10, kill)
    with pytest.raises(AbortError) as err:
        api.transform_bucket("fd-kill", str(src), str(dst), OfflineOptions(num_workers=2))
    assert "pod of t1 exited with code -9" in str(err.value)
    assert _open_fds() == fds_before
    assert err.value.stats["file_objects"] == err.value.stats["objects"] > 0  # type: ignore[attr-defined]
    got = objects(dst)
    assert all(payload == data[name].upper() for name, payload in got.items())
    assert temp_files(dst) == []
    assert tree_hashes(src) == before


def test_a_pod_that_does_not_advertise_it_gets_http(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = _tree(src, [0, 10, 4096, 1 << 20])
    api.init_code("fd-off", REVERSE, env={"AIS_ETL_FILE_SOCKET": ""})  # the runtime with it disabled
    stats = api.transform_bucket("fd-off", str(src), str(dst), OfflineOptions())
    assert objects(dst) == {n: p[::-1] + b"!" for n, p in data.items()}
    assert stats["file_objects"] == 0
    assert stats["bytes_via_engine"] == stats["bytes_out"] > 0
    api.stop("fd-off")
