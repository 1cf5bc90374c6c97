"""A second Unix user (``nobody``) against a pod's file socket: it can neither reach it nor talk to it.

A message on that socket makes the pod read and write files as the pod's user: from another user it
would copy the owner's files wherever that user likes. The socket lives in the pod's private
directory (0700 all the way up to the home) and is 0600 itself; and even if the directories were
opened to everybody, the pod answers only peers of its own user (``SO_PEERCRED``): nobody's
connection is closed before any message is read.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.local.conftest import UPPER
from tests.security.conftest import run_as_nobody

if TYPE_CHECKING:
    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

ATTACK = r"""
import json, os, socket, sys
plan = json.load(sys.stdin)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.settimeout(10)
out = {}
try:
    sock.connect(plan["path"])
except OSError as e:
    out["connect"] = type(e).__name__
else:
    out["connect"] = "ok"
    steal = {"q": "", "s": plan["src"], "r": plan["src"], "d": plan["drop"], "u": "file://" + plan["drop"],
             "f": 0, "o": [["/b/secret.txt", "secret.txt", "stolen.txt"]]}
    try:
        sock.send(json.dumps(steal).encode())
        out["answer"] = sock.recv(4096).decode("latin-1")  # b"": the pod closed it unanswered
    except OSError as e:
        out["answer"] = type(e).__name__
print(json.dumps(out))
"""


def _socket_path(api: AisEtl, name: str) -> Path:
    path = api.backend.endpoints(name)[0].file_socket
    assert path is not None
    return Path(path)


def test_nobody_cannot_reach_or_use_a_pods_file_socket(api: AisEtl, home: Path, shared: Path) -> None:
    api.init_code("fd-guarded", UPPER)
    path = _socket_path(api, "fd-guarded")
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    secrets, drop = shared / "secrets", shared / "drop"
    secrets.mkdir(mode=0o700)
    (secrets / "secret.txt").write_bytes(b"owner secret")
    drop.mkdir()
    drop.chmod(0o777)  # a place nobody could read a copy from
    plan = json.dumps({"path": str(path), "src": str(secrets), "drop": str(drop)})
    assert run_as_nobody(ATTACK, plan) == {"connect": "PermissionError"}

    # Open the way to the socket (directories 0711, socket 0666): the pod still refuses nobody.
    chain = [p for p in [path, *path.parents] if p == home or home in p.parents]
    modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in chain}
    try:
        for p in chain:
            p.chmod(0o666 if p == path else 0o711)
        got = run_as_nobody(ATTACK, plan)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert got["connect"] == "ok"
    assert got["answer"] in ("", "ConnectionResetError", "BrokenPipeError")  # closed unanswered
    assert list(drop.iterdir()) == []  # nothing copied out
    logs = "".join(p.logs for p in api.logs("fd-guarded"))
    assert "refused a connection of another user" in logs

    # The owner's own jobs still travel over it.
    src, dst = shared / "src", shared / "dst"
    src.mkdir(mode=0o700)
    (src / "a.txt").write_bytes(b"owner data")
    stats = api.transform_bucket("fd-guarded", str(src), str(dst), OfflineOptions())
    assert stats["file_objects"] == 1
    assert (dst / "a.txt").read_bytes() == b"OWNER DATA"
    api.stop("fd-guarded")
