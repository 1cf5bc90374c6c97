"""Configured object-store buckets through the unmodified SDK: ``--bucket-url aws/NAME=URL`` (and
``--bucket-map``) make ``client.bucket(NAME, provider="aws")`` an object-store bucket; put, get, head,
list, delete, inline ETL and bucket transforms in both directions work on it, byte-exact.

The object store is ``local://DIR``: fsspec's local file system opened through Airflow's
``ObjectStoragePath`` (the same object-store code path as ``s3://``), so the test can also read what
the server wrote.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import requests
from aistore.sdk.errors import AISError
from aistore.sdk.etl import ETLConfig

from tests.serve.conftest import RUNTIME_IMAGE, start_server, stop_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from aistore.sdk import Client

    from tests.serve.conftest import Served

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("serve-sdk-remote")]

CONTENT = {f"d/o-{i}.txt": f"remote {i}: {'y' * i}\n".encode() for i in range(6)}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("stores")
    out = {name: base / name for name in ("aws", "gcp", "mapped")}
    for path in out.values():
        path.mkdir()
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, stores: dict[str, Path]) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve-remote")
    bucket_map = tmp / "buckets.json"
    bucket_map.write_text(json.dumps({"azure/mapped": {"url": f"local://{stores['mapped']}"}}))
    server = start_server(
        tmp,
        "--bucket-url",
        f"aws/remote-b=local://{stores['aws']}",
        "--bucket-url",
        f"gs/remote-out=local://{stores['gcp']}/prefix",  # gs is AIS's gcp
        "--bucket-map",
        str(bucket_map),
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def client(served: Served) -> Client:
    return served.client()


def test_objects_put_get_head_list_delete_on_a_configured_bucket(
    client: Client, stores: dict[str, Path]
) -> None:
    bucket = client.bucket("remote-b", provider="aws")
    bucket.head()
    for name, data in CONTENT.items():
        bucket.object(name).get_writer().put_content(data)
    assert {
        p.relative_to(stores["aws"]).as_posix(): p.read_bytes() for p in stores["aws"].rglob("*.txt")
    } == (CONTENT)
    assert bucket.object("d/o-3.txt").get_reader().read_all() == CONTENT["d/o-3.txt"]
    assert bucket.object("d/o-4.txt").head().size == len(CONTENT["d/o-4.txt"])
    data = CONTENT["d/o-5.txt"]
    for byte_range, want in (("bytes=2-5", data[2:6]), ("bytes=-3", data[-3:]), ("bytes=4-", data[4:])):
        assert bucket.object("d/o-5.txt").get_reader(byte_range=byte_range).read_all() == want
    with pytest.raises(AISError, match="outside the object"):
        bucket.object("d/o-5.txt").get_reader(byte_range="bytes=999-").read_all()
    names = [e.name for e in bucket.list_objects_iter(prefix="d/", page_size=4)]  # two pages
    assert names == sorted(CONTENT)
    bucket.object("gone.bin").get_writer().put_content(b"x")
    bucket.object("gone.bin").delete()
    assert not (stores["aws"] / "gone.bin").exists()
    mapped = client.bucket("mapped", provider="azure")  # from --bucket-map
    mapped.object("m").get_writer().put_content(b"mapped")
    assert (stores["mapped"] / "m").read_bytes() == b"mapped"
    listed = {(b.provider, b.name) for b in client.cluster().list_buckets(provider="")}
    assert {("aws", "remote-b"), ("gcp", "remote-out"), ("azure", "mapped")} <= listed


def test_unconfigured_buckets_are_refused_and_configured_ones_not_destroyed(
    served: Served, client: Client
) -> None:
    with pytest.raises(AISError, match=r"aws://elsewhere is not served.*--bucket-url"):
        client.bucket("elsewhere", provider="aws").object("x").get_reader().read_all()
    with pytest.raises(AISError, match=r"gcp://remote-b is not served.*--bucket-url"):
        client.bucket("remote-b", provider="gcp").list_all_objects()
    # The SDK itself refuses create/destroy of a non-ais bucket; the server does too for any client.
    url = f"{served.url}/v1/buckets/remote-b?provider=aws"
    gone = requests.delete(url, json={"action": "destroy-bck"}, timeout=10)
    assert (gone.status_code, "does not destroy it" in gone.text) == (400, True)
    made = requests.post(url, json={"action": "create-bck"}, timeout=10)
    assert (made.status_code, "does not create it" in made.text) == (400, True)


def test_inline_and_bucket_transforms_from_and_to_configured_buckets(
    client: Client, code_dirs: dict[str, Path], stores: dict[str, Path]
) -> None:
    remote = client.bucket("remote-b", provider="aws")
    for name, data in CONTENT.items():
        remote.object(name).get_writer().put_content(data)
    local = client.bucket("local-src").create(exist_ok=True)
    for name, data in CONTENT.items():
        local.object(name).get_writer().put_content(data[::-1])
    etl = client.etl("upper-remote")
    etl.init(image=RUNTIME_IMAGE, AIS_ETL_CODE_DIR=str(code_dirs["upper"]))
    try:
        obj = remote.object("d/o-2.txt")
        assert obj.get_reader(etl=ETLConfig("upper-remote")).read_all() == CONTENT["d/o-2.txt"].upper()

        to_ais = client.bucket("from-remote")  # remote -> ais
        result = client.job(remote.transform("upper-remote", to_ais, prefix_filter="d/")).wait(
            timeout=60, verbose=False
        )
        assert result.success, result.error
        got = {e.name: to_ais.object(e.name).get_reader().read_all() for e in to_ais.list_all_objects()}
        assert got == {k: v.upper() for k, v in CONTENT.items()}

        to_remote = client.bucket("remote-out", provider="gcp")  # ais -> remote, under the URL's prefix
        result = client.job(local.transform("upper-remote", to_remote, prepend="t/")).wait(
            timeout=60, verbose=False
        )
        assert result.success, result.error
        out = stores["gcp"] / "prefix" / "t"
        assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.txt")} == {
            k: v[::-1].upper() for k, v in CONTENT.items()
        }
    finally:
        etl.stop()
        etl.delete()
