"""The file transport's pods read and write the job's objects in place: what they refuse, when they hold back.

Real pods (the project's runtime under the local backend) and their real sockets: some tests speak
the wire format (``runtime.filewire``) to a pod directly, as the engine does, to reach cases a job
cannot produce on its own (a link swapped after the engine checked it, an engine that hangs up).
"""

from __future__ import annotations

import os
import socket
import stat
import time
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.runtime.filewire import (
    MAX_MESSAGE,
    STORE_FAILED,
    Buckets,
    decode_answer,
    decode_hello,
    encode_request,
)
from tests.offline.conftest import REVERSE, objects, temp_files

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

SLOW_REVERSE = "import time\n\ndef transform(data):\n    time.sleep(0.6)\n    return data[::-1]\n"


def _file_socket(api: AisEtl, etl: str) -> str:
    sockets = [ep.file_socket for ep in api.backend.endpoints(etl) if ep.file_socket]
    assert sockets, "the local backend gives every pod of the project's runtime an file socket"
    return sockets[0]


def _connect(path: str) -> socket.socket:
    """Connect as the engine does: the pod's first message names the worker that took the connection."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(30)
    sock.connect(path)
    worker, workers = decode_hello(sock.recv(MAX_MESSAGE))
    assert 0 <= worker < workers
    return sock


def _buckets(src: Path, dst: Path) -> Buckets:
    return Buckets(str(src), os.path.realpath(src), str(dst), f"file://{dst}", fsync=False)


def test_a_pod_follows_links_only_inside_the_source_bucket(api: AisEtl, tmp_path: Path) -> None:
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    for d in (src, dst, outside):
        d.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (src / "inside").write_bytes(b"inside")
    os.symlink(src / "inside", src / "alias")
    os.symlink(outside / "secret", src / "escape")  # as if swapped in after the engine's check
    api.init_code("fd-links", REVERSE)
    with _connect(_file_socket(api, "fd-links")) as sock:
        objs = [
            ("/b/alias", "alias", "alias"),
            ("/b/escape", "escape", "escape"),
            ("/b/gone", "gone", "gone"),
        ]
        sock.send(encode_request("", _buckets(src, dst), objs))
        verdicts = decode_answer(sock.recv(MAX_MESSAGE), 3)
    assert verdicts[0] == (200, len(b"inside") + 1)
    assert verdicts[1][0] == STORE_FAILED
    assert "object 'escape' resolves outside the bucket" in verdicts[1][1]
    assert verdicts[2] == (STORE_FAILED, f"bucket file://{src}: object 'gone' does not exist")
    assert objects(dst) == {"alias": b"edisni!"}
    assert (outside / "secret").read_bytes() == b"secret"
    api.stop("fd-links")


def test_a_pod_names_no_result_after_the_engine_hung_up(api: AisEtl, tmp_path: Path) -> None:
    """An aborted job closes its connections: results still being written then never appear."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "slow").write_bytes(b"slow")
    api.init_code("fd-hangup", SLOW_REVERSE)
    path = _file_socket(api, "fd-hangup")
    with _connect(path) as sock:
        sock.send(encode_request("", _buckets(src, dst), [("/b/slow", "slow", "slow")]))
        time.sleep(0.2)  # the transform is running now
    time.sleep(1.0)  # long enough for it to end
    assert objects(dst) == {}
    assert temp_files(dst) == []
    with _connect(path) as sock:  # the pod still serves: a connection that waits gets its result
        sock.send(encode_request("", _buckets(src, dst), [("/b/slow", "slow", "slow")]))
        assert decode_answer(sock.recv(MAX_MESSAGE), 1) == [(200, 4)]
    assert objects(dst) == {"slow": b"wols"}
    api.stop("fd-hangup")


def test_a_directory_in_the_way_fails_only_its_object_with_a_storage_error(
    api: AisEtl, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    data = {f"o-{i}": f"payload {i}".encode() for i in range(20)}
    for name, payload in data.items():
        (src / name).write_bytes(payload)
    (dst / "o-7").mkdir(parents=True)
    (dst / "o-7" / "keep").write_bytes(b"keep")
    api.init_code("fd-blocked", REVERSE)
    stats = api.transform_bucket("fd-blocked", str(src), str(dst), OfflineOptions(continue_on_error=True))
    assert [e["object"] for e in stats["errors"]] == ["o-7"]
    assert "cannot write 'o-7': a directory has that name" in stats["errors"][0]["error"]
    expected = {n: p[::-1] + b"!" for n, p in data.items() if n != "o-7"}
    assert objects(dst) == {**expected, "o-7/keep": b"keep"}
    assert stats["file_objects"] == 19
    assert temp_files(dst) == []
    api.stop("fd-blocked")


def test_long_non_ascii_names_all_arrive(api: AisEtl, tmp_path: Path) -> None:
    """Names that JSON escapes six bytes a character: 32 such objects would not fit one message."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    deep = "/".join(["é" * 120] * 6)
    data = {f"{deep}/{'ü' * 100}-{i:03d}": f"payload {i}".encode() for i in range(80)}
    for name, payload in data.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(payload)
    api.init_code("fd-long", REVERSE)
    stats = api.transform_bucket("fd-long", str(src), str(dst), OfflineOptions())
    assert objects(dst) == {n: p[::-1] + b"!" for n, p in data.items()}
    assert stats["file_objects"] == 80
    api.stop("fd-long")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_results_and_new_directories_get_the_engines_umask(api: AisEtl, tmp_path: Path, umask: int) -> None:
    """Pods run with umask 077; what they write for a job gets the modes the engine would give it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top").write_bytes(b"top")
    (src / "a" / "b" / "deep").write_bytes(b"deep")
    api.init_code("fd-modes", REVERSE)
    old = os.umask(umask)
    try:
        stats = api.transform_bucket("fd-modes", str(src), str(dst), OfflineOptions())
    finally:
        os.umask(old)
    assert stats["file_objects"] == 2
    for name in ("top", "a/b/deep"):
        assert stat.S_IMODE((dst / name).stat().st_mode) == 0o666 & ~umask, name
    for name in ("a", "a/b"):
        assert stat.S_IMODE((dst / name).stat().st_mode) == 0o777 & ~umask, name
    api.stop("fd-modes")
