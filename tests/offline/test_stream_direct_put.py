"""Streaming transforms (``CHUNK_SIZE > 0``) deliver by direct put too: the engine carries no result bytes.

The pod PUTs the writer's chunks to the target gateway while the transform runs (runtime.streamput);
a transform that fails midway leaves no destination object and no temp file.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import make_tree, objects, temp_files

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

BIG = 24 << 20
CHUNK = 256 * 1024

# Writes, for each object of BIG bytes or more, the pod process's peak RSS (VmHWM) before and after
# the transform: a pod that held the whole result before delivering it would grow by BIG.
UPPER_REPORTING = """
def _peak():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmHWM')

def transform(reader, writer, path, etl_args):
    before = _peak()
    n = 0
    for chunk in reader:
        n += writer.write(chunk.upper())
    if n >= {big}:
        with open({report!r}, 'a') as f:
            f.write(f'{{path}} {{n}} {{before}} {{_peak()}}\\n')
"""

FAIL_MIDWAY = """
def transform(reader, writer):
    n = 0
    for chunk in reader:
        n += writer.write(chunk.upper())
        if b'FAIL' in chunk:
            raise ValueError(f'refused after {n} bytes')
"""


def _big_object(root: Path) -> bytes:
    payload = hashlib.sha256(b"big").hexdigest().encode() * (BIG // 64 + 5)
    (root / "huge.bin").write_bytes(payload)
    return payload


@pytest.mark.parametrize(
    ("comm_type", "arg_type"),
    [("hpull://", ""), ("hpush://", ""), ("hpull://", "fqn")],
    ids=["hpull", "hpush", "hpull-fqn"],
)
def test_streaming_transform_delivers_by_direct_put(
    api: AisEtl, tmp_path: Path, comm_type: str, arg_type: str
) -> None:
    src, dst, report = tmp_path / "src", tmp_path / "dst", tmp_path / "peaks.txt"
    data = make_tree(src, 20, big=2)
    data["huge.bin"] = _big_object(src)
    code = UPPER_REPORTING.format(big=BIG, report=str(report))
    api.init_code(
        "stream-put", code, comm_type=comm_type, arg_type=arg_type, direct_put=True, chunk_size=CHUNK
    )
    stats = api.transform_bucket("stream-put", str(src), str(dst), OfflineOptions(num_workers=2))
    assert stats["state"] == "done", stats["errors"]
    assert stats["objects"] == len(data)
    assert objects(dst) == {name: payload.upper() for name, payload in data.items()}
    assert stats["direct_put_objects"] == len(data)
    assert stats["bytes_via_engine"] == 0
    assert stats["bytes_out"] == sum(len(p) for p in data.values())
    assert temp_files(dst) == []
    (line,) = report.read_text().splitlines()
    path, size, before, after = line.split()
    assert path.endswith("huge.bin")
    assert int(size) == len(data["huge.bin"])
    # bounded: the pod's peak grew by far less than the object (a few chunks and socket buffers)
    assert int(after) - int(before) < BIG // 3, (before, after)
    api.stop("stream-put")


def test_transform_failing_midway_leaves_no_destination_object(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    good = {f"good-{i}.dat": f"fine {i} ".encode() * (1 + 30_000 * (i % 2)) for i in range(6)}
    for name, payload in good.items():
        (src / name).write_bytes(payload)
    bad = b"x" * (3 << 20) + b"FAIL" + b"y" * CHUNK  # fails after 3 MiB went out in the PUT
    (src / "bad.dat").write_bytes(bad)
    api.init_code("stream-fail", FAIL_MIDWAY, comm_type="hpull://", direct_put=True, chunk_size=CHUNK)
    stats = api.transform_bucket(
        "stream-fail", str(src), str(dst), OfflineOptions(continue_on_error=True, num_workers=2)
    )
    assert [e["object"] for e in stats["errors"]] == ["bad.dat"]
    assert "ValueError: refused after" in stats["errors"][0]["error"], stats["errors"]
    assert objects(dst) == {name: payload.upper() for name, payload in good.items()}
    assert not (dst / "bad.dat").exists()
    # the gateway discards the cut PUT in its own thread, perhaps just after the job ended
    deadline = time.monotonic() + 30
    while temp_files(dst) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert temp_files(dst) == []
    assert stats["direct_put_objects"] == len(good)
    assert stats["bytes_via_engine"] == 0
    api.stop("stream-fail")
