"""A second Unix user (``nobody``) against running ETLs: no data, no file, no secret gets out.

The owner (root) runs ETLs of every kind that reads data (hpull, hpush, fqn) and a job holding a
grant on its source bucket; a root-only file (0600 in a 0700 directory) lies outside that bucket.
As ``nobody`` we then ask every pod and the gateway for it (and for ``/etc/shadow``), with no
secret, with the ETL's gateway secret (as if it leaked) and with a wrong token; read every file
under the home; and look for the secrets in every process's command line. Finally the owner's own
jobs still run, byte-exact.
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest

from airflow_ais_etl.cluster.bucketmap import bucket_name
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.constants import FQN_ROOT_HEADER, TOKEN_HEADER
from tests.local.conftest import UPPER
from tests.security.conftest import all_cmdlines, run_as_nobody, secret_file

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

SECRET = b"root-only-5f1c0a9e-do-not-leak"
ENV_SECRET = "env-secret-7b2d41c3"

ATTACK = r"""
import json, os, sys, urllib.request, urllib.error
plan = json.load(sys.stdin)
out = {"http": [], "read": [], "denied": [], "hits": []}

def ask(item):
    data = item.get("data")
    req = urllib.request.Request(item["url"], method=item.get("method", "GET"),
                                 headers=item.get("headers", {}), data=data.encode() if data else None)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read().decode("latin-1")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("latin-1")
    except Exception as e:
        return -1, repr(e)

for item in plan["requests"]:
    status, body = ask(item)
    out["http"].append({"url": item["url"], "headers": item.get("headers", {}), "status": status, "body": body[:400]})
for root, dirs, files in os.walk(plan["home"]):
    for name in files:
        try:
            with open(os.path.join(root, name), "rb") as f:
                f.read(1)
            out["read"].append(os.path.join(root, name))
        except OSError:
            pass
for path in plan["paths"]:
    try:
        with open(path, "rb") as f:
            f.read(1)
        out["read"].append(path)
    except OSError:
        out["denied"].append(path)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as f:
                    text = f.read().decode("latin-1")
            except OSError:
                continue
            out["hits"] += [[pid, what, n] for n in plan["needles"] if n in text]
print(json.dumps(out))
"""


def _uname(bucket: str, obj: str) -> str:
    return quote(f"ais/@#/{bucket}/{obj}", safe="")


def _pod_requests(url: str, bucket: str, vault_bucket: str, secret_path: Path) -> list[dict[str, Any]]:
    """What an attacker asks a pod: objects of the granted bucket and the root-only file, every way."""
    fqn_paths = [quote(str(secret_path), safe=""), quote("/etc/shadow", safe=""), "etc/shadow"]
    paths = [_uname(bucket, "a.txt"), _uname(vault_bucket, "secret.txt"), *fqn_paths]
    paths.append(_uname(bucket, "../vault/secret.txt"))
    out: list[dict[str, Any]] = []
    for path in paths:
        out.append({"url": f"{url}/{path}"})
        out.append({"url": f"{url}/{path}", "method": "PUT", "data": "attacker's bytes"})
        forged = {FQN_ROOT_HEADER: "/", TOKEN_HEADER: "0" * 48}
        out.append({"url": f"{url}/{path}", "headers": forged})
    return out


def _gateway_requests(gw: str, secret: str, bucket: str, vault_bucket: str) -> list[dict[str, Any]]:
    base = f"{gw}/v1/etl/_object"
    etc_bucket = bucket_name("/etc")[0]
    out = []
    for s in ("", "WrongSecrt", secret):
        for uname in (
            _uname(vault_bucket, "secret.txt"),
            _uname(etc_bucket, "shadow"),
            _uname(bucket, "..%2Fvault%2Fsecret.txt"),
            quote(f"ais/@#/{bucket}/../vault/secret.txt", safe=""),
        ):
            out.append({"url": f"{base}/{s}/{uname}"})
    return out


def _assert_private_tree(home: Path) -> None:
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            if stat.S_ISLNK(st.st_mode):
                continue
            assert st.st_mode & 0o077 == 0, (
                f"{os.path.join(root, name)} has mode {stat.S_IMODE(st.st_mode):o}"
            )
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700


def test_nobody_gets_nothing_through_pods_gateway_files_or_argv(
    api: AisEtl, home: Path, shared: Path
) -> None:
    secret_path = secret_file(shared, SECRET)
    src, vault = shared / "src", secret_path.parent
    src.mkdir(mode=0o700)
    payload = {f"obj-{i}.txt": f"object {i} of the owner\n".encode() * (i + 1) for i in range(20)}
    payload["a.txt"] = b"granted data"
    for name, data in payload.items():
        (src / name).write_bytes(data)
    kinds = {
        "sec-hpull": {"comm_type": "hpull://"},
        "sec-hpush": {"comm_type": "hpush://"},
        "sec-fqn": {"comm_type": "hpull://", "arg_type": "fqn"},
    }
    for name, options in kinds.items():
        api.init_code(name, UPPER, env={"AWS_SECRET_ACCESS_KEY": ENV_SECRET}, **options)
    backend: Any = api.backend
    bucket, vault_bucket = bucket_name(str(src))[0], bucket_name(str(vault))[0]
    gateway = json.loads((home / "targets" / "t1" / "gateway.json").read_text())
    gw = f"http://{gateway['host']}:{gateway['port']}"
    gw_secret = backend.access.secrets("sec-hpull").gateway_secret
    needles = [ENV_SECRET] + [backend.access.secrets(n).token for n in kinds]
    needles += [backend.access.secrets(n).gateway_secret for n in kinds]

    requests: list[dict[str, Any]] = []
    assert gateway["host"] == "127.0.0.1"
    for name in kinds:
        for ep in backend.endpoints(name):
            assert urlsplit(ep.url).hostname.startswith("127."), ep.url  # loopback only, like the gateway
            requests += _pod_requests(ep.url, bucket, vault_bucket, secret_path)
    requests += _gateway_requests(gw, gw_secret, bucket, vault_bucket)
    paths = [str(secret_path), "/etc/shadow", str(home / "etls" / "sec-hpull" / "secrets.json")]
    paths += [str(home / "etls" / "sec-hpull" / "t1" / "pod.yaml"), str(home / "md.json")]
    plan = {"requests": requests, "home": str(home), "paths": paths, "needles": needles}

    with backend.grant("sec-hpull", str(src)):  # a job of the owner is running, its source granted
        _assert_private_tree(home)
        result = run_as_nobody(ATTACK, json.dumps(plan))

    assert result["read"] == [], f"nobody read {result['read']}"
    assert sorted(result["denied"]) == sorted(paths)
    assert result["hits"] == [], f"secrets visible to nobody in /proc: {result['hits']}"
    for answer in result["http"]:
        body = answer["body"]
        assert SECRET.decode() not in body, answer
        assert "root:" not in body, answer
        assert "granted data" not in body.lower(), answer  # not even the granted bucket, without the token
        if "/v1/etl/_object/" in answer["url"]:
            assert answer["status"] in (400, 403, 404), answer
        else:
            assert answer["status"] in (401, 403), answer
            assert TOKEN_HEADER in body, answer  # the refusal says what is missing
    for text in all_cmdlines().values():
        assert not any(n in text for n in needles), text

    # The owner's jobs still work, byte-exact; the pods read the source bucket only meanwhile.
    for name in kinds:
        dst = shared / f"dst-{name}"
        stats = api.transform_bucket(name, str(src), str(dst), OfflineOptions(num_workers=4))
        assert stats["objects"] == len(payload), stats
        for obj, data in payload.items():
            assert (dst / obj).read_bytes() == data.upper()
    _assert_private_tree(home)
    api.stop_all()
    assert not (home / "etls" / "sec-hpull" / "secrets.json").exists()
    assert list((home / "grants").glob("*.json")) == []


def test_fqn_pod_refuses_paths_outside_the_jobs_bucket(api: AisEtl, shared: Path) -> None:
    """With the token (the owner's engine), fqn still opens only under the roots the job names."""
    secret_path = secret_file(shared, SECRET)
    src = shared / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"fine")
    (src / "link.txt").symlink_to(secret_path)
    api.init_code("sec-fqn2", UPPER, comm_type="hpull://", arg_type="fqn")
    ep = api.backend.endpoints("sec-fqn2")[0]
    assert ep.token
    import urllib.error
    import urllib.request

    def get(path: str, root: str | None) -> tuple[int, bytes]:
        headers = {TOKEN_HEADER: ep.token or ""}
        if root is not None:
            headers[FQN_ROOT_HEADER] = quote(root, safe="/")
        req = urllib.request.Request(f"{ep.url}/{quote(path, safe='')}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    assert get(str(src / "ok.txt"), str(src)) == (200, b"FINE")
    for path in (str(secret_path), "/etc/shadow", str(src / "link.txt"), f"{src}/../vault/secret.txt"):
        status, body = get(path, str(src))
        assert status == 403, (path, status, body)
        assert b"not inside a bucket granted to this job" in body
        assert SECRET not in body
        assert SECRET.upper() not in body
    status, body = get(str(src / "ok.txt"), None)  # the token alone names no root
    assert status == 403
    assert b"names no granted bucket" in body
    api.stop("sec-fqn2")
