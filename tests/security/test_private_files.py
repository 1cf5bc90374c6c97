"""Private state without processes: modes at creation, the home check, fqn roots and grant bookkeeping."""

from __future__ import annotations

import json
import os
import stat
import threading
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.grants import (
    GrantReader,
    add_grant,
    create_grants,
    drop_grants,
    live_buckets,
    revoke_grant,
)
from airflow_ais_etl.cluster.local.etlsecrets import new_secrets
from airflow_ais_etl.cluster.private import (
    UnsafeHomeError,
    ensure_private_home,
    open_private,
    private_dir,
    write_private,
)
from airflow_ais_etl.runtime.access import AccessRefused, Gate, open_granted
from airflow_ais_etl.runtime.upstream import shown_url

if TYPE_CHECKING:
    from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_files_and_dirs_are_private_from_creation_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the widest umask a careless process could have; restored below
    try:
        d = private_dir(tmp_path / "a" / "b")
        write_private(d / "state.json", "{}")
        with open_private(d / "x.log", "ab") as f:
            f.write(b"line\n")
            assert mode(d / "x.log") == 0o600  # already while it is being written
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == 0o700
    assert mode(d) == 0o700
    assert mode(d / "state.json") == 0o600
    assert [p.name for p in d.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_open_private_narrows_an_old_log_and_refuses_symlinks(tmp_path: Path) -> None:
    old_log = tmp_path / "old.log"
    old_log.write_text("x")
    old_log.chmod(0o644)
    with open_private(old_log, "ab") as f:
        f.write(b"y")
    assert mode(old_log) == 0o600
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "link.log").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        open_private(tmp_path / "link.log", "ab")
    assert target.read_text() == "keep"


def test_new_home_is_created_private(tmp_path: Path) -> None:
    home = ensure_private_home(tmp_path / "x" / "home")
    assert mode(home) == 0o700


def test_home_of_an_older_version_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "etls" / "e" / "t1").mkdir(parents=True)
    for p in (home, home / "etls", home / "etls" / "e", home / "etls" / "e" / "t1"):
        p.chmod(0o755)
    spec = home / "etls" / "e" / "t1" / "pod.yaml"
    spec.write_text("env: secret")
    spec.chmod(0o644)
    tool = home / "deps" / "bin" / "tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    ensure_private_home(home)
    assert mode(home) == 0o700
    assert mode(home / "etls" / "e" / "t1") == 0o700
    assert mode(spec) == 0o600
    assert mode(tool) == 0o700  # owner keeps execute: installed programs still run


def test_home_others_may_write_is_refused_with_the_fix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    with pytest.raises(UnsafeHomeError) as err:
        ensure_private_home(home)
    assert f"chmod 700 {home}" in str(err.value)
    assert mode(home) == 0o777  # refused, not silently changed


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_home_of_another_user_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.chown(home, 65534, 65534)
    with pytest.raises(UnsafeHomeError, match="belongs to uid 65534, not to you"):
        ensure_private_home(home)


def test_parent_others_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    parent = tmp_path / "open"
    parent.mkdir()
    parent.chmod(0o777)
    with pytest.raises(UnsafeHomeError, match=f"chmod go-w {parent}"):
        ensure_private_home(parent / "home")
    parent.chmod(0o1777)  # like /tmp: others cannot rename or remove what is ours
    assert mode(ensure_private_home(parent / "home2")) == 0o700


def test_gate_checks_the_token() -> None:
    gate = Gate("s3cr3t-token")
    gate.check({"x-ais-etl-token": "s3cr3t-token"})
    with pytest.raises(AccessRefused) as err:
        gate.check({})
    assert err.value.status == 401
    with pytest.raises(AccessRefused) as err:
        gate.check({"x-ais-etl-token": "s3cr3t-tokeN"})
    assert err.value.status == 403
    Gate("").check({})  # a pod started without a token checks nothing, as AIS's do


def test_fqn_opens_only_under_granted_roots(tmp_path: Path) -> None:
    bucket, outside = tmp_path / "bucket", tmp_path / "outside"
    (bucket / "sub").mkdir(parents=True)
    outside.mkdir()
    (bucket / "sub" / "ok").write_bytes(b"ok")
    (outside / "secret").write_bytes(b"no")
    (bucket / "link").symlink_to(outside / "secret")
    (bucket / "dirlink").symlink_to(outside)
    headers = {"x-ais-etl-fqn-root": str(bucket)}
    with open_granted(str(bucket / "sub" / "ok"), headers, required=True) as f:
        assert f.read() == b"ok"
    for path in (
        outside / "secret",
        bucket / "link",
        bucket / "dirlink" / "secret",
        bucket / ".." / "outside" / "secret",
    ):
        with pytest.raises(AccessRefused) as err:
            open_granted(str(path), headers, required=True)
        assert err.value.status == 403
    # a root that is a prefix of another directory's name grants nothing in that one
    (tmp_path / "bucket2").mkdir()
    (tmp_path / "bucket2" / "x").write_bytes(b"x")
    with pytest.raises(AccessRefused):
        open_granted(str(tmp_path / "bucket2" / "x"), headers, required=True)
    with pytest.raises(AccessRefused, match="names no granted bucket"):
        open_granted(str(bucket / "sub" / "ok"), {}, required=True)
    open_granted(str(bucket / "sub" / "ok"), {}, required=False).close()  # AIS's behaviour, no token


def test_grants_last_as_long_as_the_job(tmp_path: Path) -> None:
    grants = str(tmp_path / "grants")
    s = new_secrets()
    assert "token" not in repr(s)
    assert s.token not in repr(s)
    create_grants(grants, s.gateway_secret, "etl-a")
    reader = GrantReader(grants)
    assert reader.lookup("WrongSecrt") is None
    assert live_buckets(reader.lookup(s.gateway_secret) or {}) == {}
    add_grant(grants, s.gateway_secret, "b-1", "file:///data", "job-1")
    assert live_buckets(reader.lookup(s.gateway_secret) or {}) == {"b-1": "file:///data"}
    other = new_secrets()  # another ETL in the same home sees none of it
    create_grants(grants, other.gateway_secret, "etl-b")
    assert live_buckets(reader.lookup(other.gateway_secret) or {}) == {}
    revoke_grant(grants, s.gateway_secret, "job-1")
    assert live_buckets(reader.lookup(s.gateway_secret) or {}) == {}
    drop_grants(grants, s.gateway_secret)
    assert reader.lookup(s.gateway_secret) is None
    assert mode(tmp_path / "grants") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "grants").iterdir())


def test_grant_of_a_dead_job_counts_for_nothing(tmp_path: Path) -> None:
    grants = str(tmp_path / "grants")
    s = new_secrets()
    create_grants(grants, s.gateway_secret, "etl-a")
    add_grant(grants, s.gateway_secret, "b-1", "file:///data", "job-1")
    path = next((tmp_path / "grants").glob("*.json"))
    data = json.loads(path.read_text())
    data["buckets"]["b-1"]["jobs"]["job-1"]["start"] = "1"  # as if the pid were reused by another process
    path.write_text(json.dumps(data))
    assert live_buckets(GrantReader(grants).lookup(s.gateway_secret) or {}) == {}


def test_concurrent_grants_all_land(tmp_path: Path) -> None:
    grants = str(tmp_path / "grants")
    s = new_secrets()
    create_grants(grants, s.gateway_secret, "etl-a")
    threads = [
        threading.Thread(
            target=add_grant, args=(grants, s.gateway_secret, f"b-{i}", f"file:///d{i}", f"j{i}")
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(live_buckets(GrantReader(grants).lookup(s.gateway_secret) or {})) == 8


def test_callback_errors_never_show_the_gateway_secret() -> None:
    url = "http://127.0.0.1:4242/v1/etl/_object/TopSecret1"
    assert shown_url(url) == "http://127.0.0.1:4242/v1/etl/_object/***"
    assert "TopSecret1" not in shown_url(url + "/")
