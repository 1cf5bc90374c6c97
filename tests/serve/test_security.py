"""Bad input through the SDK gives the SDK's own exceptions with readable text; nothing outside the
bucket root is reachable (``..``, ``%2e%2e``, absolute names, symlinks out); the token is enforced."""

from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests
from aistore.sdk.errors import (
    AISError,
    ErrBckAlreadyExists,
    ErrBckNotFound,
    ErrETLNotFound,
    ErrObjNotFound,
)
from aistore.sdk.etl import ETLConfig

from airflow_ais_etl.cli import main
from tests.serve.conftest import start_server, stop_server

if TYPE_CHECKING:
    from pathlib import Path

    from aistore.sdk import Client

    from tests.serve.conftest import Served

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("serve-security")]

SECRET = b"top secret, outside the bucket root"


def _raw(served: Served, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``path`` exactly as written (no client-side dot-segment removal)."""
    parts = urlsplit(served.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, path, body=body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_sdk_errors_are_its_own_exceptions_with_readable_text(client: Client, served: Served) -> None:
    with pytest.raises(ErrBckNotFound) as not_found:
        client.bucket("no-such").list_objects()
    assert json.loads(not_found.value.message)["message"] == 'bucket "ais://no-such" does not exist'
    with pytest.raises(AISError) as exc:  # HEAD has no body: the message is in a header, as AIS does
        client.bucket("no-such").head()
    assert exc.value.status_code == 404
    head = requests.head(f"{served.url}/v1/buckets/no-such", timeout=30)
    assert head.headers["ais-error"] == 'bucket "ais://no-such" does not exist'
    bucket = client.bucket("err-src").create()
    with pytest.raises(ErrBckAlreadyExists, match="already exists"):
        client.bucket("err-src").create()
    bucket.object("a.txt").get_writer().put_content(b"a")
    with pytest.raises(ErrObjNotFound, match="ais://err-src/missing.txt does not exist"):
        bucket.object("missing.txt").get_reader().read_all()
    with pytest.raises(ErrETLNotFound, match="etl job no-such-etl does not exist"):
        bucket.object("a.txt").get_reader(etl=ETLConfig("no-such-etl")).read_all()
    with pytest.raises(ErrETLNotFound, match="etl job no-such-etl does not exist"):
        bucket.transform("no-such-etl", client.bucket("err-dst"))
    with pytest.raises(AISError, match="cannot run locally") as exc:
        client.etl("nolocal-etl").init(image="example.com/not-here:1.0")
    assert exc.value.status_code == 400
    assert client.cluster().list_etls(stages=["Running", "Stopped", "Aborted"]) == []
    with pytest.raises(AISError, match="aws://b is not served.*--bucket-url"):
        client.bucket("b", provider="s3").list_objects()
    status, body = _raw(served, "GET", "/v1/nothing-here")
    assert status == 404
    assert b"no such endpoint" in body
    status, body = _raw(served, "PUT", "/v1/etl", b'{"name": "Bad_Name", "runtime": {"image": "x"}}')
    assert status == 400
    assert b"Bad_Name" in body


def test_nothing_outside_the_bucket_root_is_reachable(served: Served, client: Client) -> None:
    outside = served.buckets.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (served.buckets.parent / "secret.txt").write_bytes(SECRET)
    client.bucket("sec").create()
    (served.buckets / "sec" / "link.txt").symlink_to(outside / "secret.txt")
    (served.buckets / "sec" / "linkdir").symlink_to(outside)
    (served.buckets / "evil").symlink_to(outside)
    attempts = [
        "/v1/objects/sec/..%2F..%2Fsecret.txt",
        "/v1/objects/sec/../../secret.txt",
        "/v1/objects/sec/%2e%2e/%2e%2e/secret.txt",
        "/v1/objects/sec//" + str(outside / "secret.txt").lstrip("/"),
        "/v1/objects/sec/link.txt",
        "/v1/objects/sec/linkdir/secret.txt",
        "/v1/objects/%2e%2e/secret.txt",
        "/v1/objects/evil/secret.txt",
    ]
    for path in attempts:
        for method in ("GET", "HEAD"):
            status, body = _raw(served, method, path)
            assert status in (400, 404), (method, path, status)
            assert SECRET not in body
    status, _ = _raw(served, "PUT", "/v1/objects/sec/..%2F..%2Fescaped.txt", b"x")
    assert status == 400
    status, _ = _raw(served, "PUT", "/v1/objects/sec/linkdir/planted.txt", b"x")
    assert status == 400
    assert not (served.buckets.parent / "escaped.txt").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert [e.name for e in client.bucket("sec").list_all_objects()] == []  # links out are not listed


def test_token_is_required_when_configured(tmp_path: Path) -> None:
    served = start_server(tmp_path, token="s3cret-token-value")
    try:
        with pytest.raises(AISError, match="token required") as exc:
            served.client(token="").bucket("tok").create()
        assert exc.value.status_code == 401
        with pytest.raises(AISError, match="token required"):
            served.client(token="wrong").cluster().list_etls()
        bucket = served.client().bucket("tok").create()  # Client(url, token=...)
        bucket.object("o").get_writer().put_content(b"data")
        assert bucket.object("o").get_reader().read_all() == b"data"
    finally:
        stop_server(served)


def _serve_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``ais-etl serve`` in this process: these refusals come before anything binds or starts."""
    code = main(["--home", str(tmp_path / "home"), "serve", "--buckets", str(tmp_path / "b"), *args])
    return code, capsys.readouterr().err


def test_non_loopback_without_a_token_and_a_readable_token_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _serve_cli(tmp_path, capsys, "--listen", "0.0.0.0:0")
    assert code == 1
    assert "refusing to listen on 0.0.0.0 without a token" in err
    token = tmp_path / "token"
    token.write_text("abc")
    token.chmod(0o644)
    code, err = _serve_cli(tmp_path, capsys, "--token-file", str(token))
    assert code == 1
    assert "chmod 600" in err
