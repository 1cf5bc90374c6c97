"""Every comm type x arg type over a few hundred objects, checked byte for byte (and inline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import (
    REVERSE,
    REVERSE_IO,
    REVERSE_URL,
    UPPER_CHUNKED,
    make_tree,
    objects,
    reverse,
    temp_files,
    tree_hashes,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

COMBOS = [
    ("hpush://", ""),
    ("hpush://", "fqn"),
    ("hpull://", ""),
    ("hpull://", "url"),
    ("hpull://", "fqn"),
    ("hrev://", ""),
    ("io://", ""),
]


def code_for(comm_type: str, arg_type: str) -> str:
    if comm_type == "io://":
        return REVERSE_IO
    return REVERSE_URL if arg_type == "url" else REVERSE


@pytest.mark.integration
@pytest.mark.parametrize(
    ("comm_type", "arg_type"), COMBOS, ids=[f"{c[:-3]}-{a or 'bytes'}" for c, a in COMBOS]
)
def test_bucket_transform_is_byte_exact(api: AisEtl, tmp_path: Path, comm_type: str, arg_type: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = make_tree(src, 240)
    before = tree_hashes(src)
    api.init_code("matrix-etl", code_for(comm_type, arg_type), comm_type=comm_type, arg_type=arg_type)
    stats = api.transform_bucket("matrix-etl", str(src), str(dst), OfflineOptions(num_workers=4))
    assert stats["state"] == "done"
    assert stats["objects"] == len(data)
    assert stats["error_count"] == 0
    assert stats["bytes_in"] == sum(len(v) for v in data.values())
    got = objects(dst)
    assert sorted(got) == sorted(data)
    for name, payload in data.items():
        assert got[name] == reverse(payload), name
    assert stats["bytes_out"] == sum(len(v) for v in got.values())
    assert tree_hashes(src) == before
    assert temp_files(dst) == []
    api.stop("matrix-etl")


@pytest.mark.integration
@pytest.mark.parametrize("comm_type", ["hpush://", "hpull://", "hrev://"])
def test_chunked_transforms_stream_large_objects(api: AisEtl, tmp_path: Path, comm_type: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = make_tree(src, 60, big=4)
    api.init_code("chunk-etl", UPPER_CHUNKED, comm_type=comm_type, chunk_size=64 * 1024)
    stats = api.transform_bucket("chunk-etl", str(src), str(dst))
    assert stats["objects"] == len(data)
    got = objects(dst)
    assert got == {name: payload.upper() for name, payload in data.items()}
    assert temp_files(dst) == []
    api.stop("chunk-etl")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("comm_type", "arg_type"), COMBOS, ids=[f"{c[:-3]}-{a or 'bytes'}" for c, a in COMBOS]
)
def test_inline_to_bytes_and_to_object(api: AisEtl, tmp_path: Path, comm_type: str, arg_type: str) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    data = make_tree(src, 3, big=1)
    api.init_code("inline-etl", code_for(comm_type, arg_type), comm_type=comm_type, arg_type=arg_type)
    for name, payload in data.items():
        assert api.transform_object("inline-etl", str(src), name) == reverse(payload), name
    big = next(n for n, p in data.items() if len(p) > 1 << 20)
    summary = api.transform_object("inline-etl", str(src), big, dst=str(out), dst_name="x/y z.bin")
    assert isinstance(summary, dict)
    assert (out / "x" / "y z.bin").read_bytes() == reverse(data[big])
    assert summary["bytes_out"] == len(data[big]) + 1
    assert temp_files(out) == []
    api.stop("inline-etl")
