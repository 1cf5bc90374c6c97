"""The unmodified ``aistore`` SDK against ``ais-etl serve``: ETL lifecycle, inline reads, pipelines,
the older init-code message, and bucket transforms with job waits; every result byte-exact."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
import requests
from aistore.sdk.errors import ErrETLNotFound
from aistore.sdk.etl import ETLConfig

from tests.serve.conftest import RUNTIME_IMAGE

if TYPE_CHECKING:
    from pathlib import Path

    from aistore.sdk import Client
    from aistore.sdk.bucket import Bucket

    from tests.serve.conftest import Served

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("serve-sdk-etl")]

CONTENT = {f"dir/obj-{i}.txt": f"object {i}: {'x' * i}\n".encode() for i in range(12)}


def _fill(client: Client, name: str) -> Bucket:
    bucket = client.bucket(name).create(exist_ok=True)
    for obj, data in CONTENT.items():
        bucket.object(obj).get_writer().put_content(data)
    return bucket


def test_lifecycle_view_list_logs_stop_start_delete(client: Client, code_dirs: dict[str, Path]) -> None:
    bucket = _fill(client, "life-src")
    etl = client.etl("upper-life")
    etl.init(image=RUNTIME_IMAGE, comm_type="hpush", AIS_ETL_CODE_DIR=str(code_dirs["upper"]))

    details = etl.view()
    assert details.init_msg.name == "upper-life"
    assert details.init_msg.communication == "hpush://"
    assert details.init_msg.runtime.image == RUNTIME_IMAGE
    assert [(e.id, e.stage) for e in client.cluster().list_etls()] == [("upper-life", "Running")]
    obj = bucket.object("dir/obj-3.txt")
    assert obj.get_reader(etl=ETLConfig("upper-life")).read_all() == CONTENT["dir/obj-3.txt"].upper()
    assert obj.get_reader().read_all() == CONTENT["dir/obj-3.txt"]  # a plain read is untouched
    logs = etl.logs()
    assert len(logs) == 2
    assert all("runtime ready" in entry.logs for entry in logs)
    assert [e.target_id for e in etl.logs(logs[0].target_id)] == [logs[0].target_id]

    etl.stop()
    assert client.cluster().list_etls() == []
    stopped = client.cluster().list_etls(stages=["Stopped"])
    assert [(e.id, e.obj_count) for e in stopped] == [("upper-life", 1)]
    etl.start()
    assert obj.get_reader(etl=ETLConfig(etl)).read_all() == CONTENT["dir/obj-3.txt"].upper()
    etl.stop()
    etl.delete()
    assert client.cluster().list_etls(stages=["Running", "Stopped", "Aborted"]) == []
    with pytest.raises(ErrETLNotFound, match="etl job upper-life does not exist"):
        etl.view()


def test_inline_args_and_a_two_etl_pipeline(client: Client, code_dirs: dict[str, Path]) -> None:
    bucket = _fill(client, "pipe-src")
    args_etl, reverse_etl = client.etl("args-etl"), client.etl("reverse-etl")
    args_etl.init(image=RUNTIME_IMAGE, AIS_ETL_CODE_DIR=str(code_dirs["args"]))
    reverse_etl.init(image=RUNTIME_IMAGE, AIS_ETL_CODE_DIR=str(code_dirs["reverse"]))
    try:
        obj = bucket.object("dir/obj-5.txt")
        data = CONTENT["dir/obj-5.txt"]
        with_args = obj.get_reader(etl=ETLConfig("args-etl", args="size=7 & more")).read_all()
        assert with_args == data + b"|size=7 & more"
        as_dict = obj.get_reader(etl=ETLConfig("args-etl", args={"k": "v"})).read_all()
        assert as_dict == data + b'|{"k":"v"}'  # the SDK sends a dict as compact JSON
        pipeline = args_etl >> reverse_etl
        assert obj.get_reader(etl=ETLConfig(pipeline, args="A")).read_all() == (data + b"|A")[::-1]
    finally:
        for etl in (args_etl, reverse_etl):
            etl.stop()
            etl.delete()


def test_older_init_code_message(served: Served, client: Client) -> None:
    """AIS 3.2x's ``InitCodeMsg`` (what SDK 1.x's removed ``init_code`` sent) still initialises."""
    bucket = _fill(client, "code-src")
    msg = {
        "id": "code-etl",
        "communication": "hpush://",
        "timeout": "2m",
        "runtime": "python3.11v2",
        "code": base64.b64encode(b"def transform(data):\n    return data.swapcase()\n").decode(),
        "funcs": {"transform": "transform"},
    }
    assert requests.put(f"{served.url}/v1/etl", json=msg, timeout=120).status_code == 200
    try:
        assert client.etl("code-etl").view().init_msg.runtime == "python3.11v2"
        obj = bucket.object("dir/obj-2.txt")
        assert obj.get_reader(etl=ETLConfig("code-etl")).read_all() == CONTENT["dir/obj-2.txt"].swapcase()
    finally:
        client.etl("code-etl").stop()
        client.etl("code-etl").delete()


def test_bucket_transforms_with_job_wait(client: Client, code_dirs: dict[str, Path]) -> None:
    src = _fill(client, "off-src")
    src.object("other/skip.txt").get_writer().put_content(b"not selected")
    etl = client.etl("upper-off")
    etl.init(image=RUNTIME_IMAGE, AIS_ETL_CODE_DIR=str(code_dirs["upper"]))
    try:
        dst = client.bucket("off-dst")
        job_id = src.transform("upper-off", dst, prefix_filter="dir/", prepend="up-", ext={"txt": "TXT"})
        result = client.job(job_id).wait(timeout=60, verbose=False)
        assert result.success, result.error
        got = {e.name: dst.object(e.name).get_reader().read_all() for e in dst.list_all_objects()}
        assert got == {f"up-{k[:-3]}TXT": v.upper() for k, v in CONTENT.items()}
        snaps = client.job(job_id).get_details().list_snapshots()
        assert [(s.kind, s.stats.out_objects if s.stats else -1) for s in snaps] == [
            ("etl-bck", len(CONTENT))
        ]

        listed = client.bucket("off-list")
        chosen = ["dir/obj-1.txt", "dir/obj-7.txt"]
        job_id = src.objects(obj_names=chosen).transform(to_bck=listed, etl_name="upper-off")
        result = client.job(job_id).wait(timeout=60, verbose=False)  # etl-listrange: an idle-kind wait
        assert result.success, result.error
        assert {e.name: listed.object(e.name).get_reader().read_all() for e in listed.list_all_objects()} == {
            n: CONTENT[n].upper() for n in chosen
        }

        failing = client.bucket("off-fail")
        job_id = src.objects(obj_template="dir/obj-{0..3}.txt").transform(
            to_bck=failing, etl_name="upper-off", continue_on_error=True
        )
        assert client.job(job_id).wait(timeout=60, verbose=False).success
        assert etl.view(job_id=job_id).obj_errors is None  # nothing failed
        assert sorted(e.name for e in failing.list_all_objects()) == [f"dir/obj-{i}.txt" for i in range(4)]

        dry = client.bucket("off-dry")
        assert (
            client.job(src.transform("upper-off", dry, dry_run=True)).wait(timeout=60, verbose=False).success
        )
        assert dry.list_all_objects() == []
    finally:
        etl.stop()
        etl.delete()


def test_listing_pages_the_way_list_objects_iter_expects(client: Client) -> None:
    bucket = _fill(client, "page-src")
    names = [e.name for e in bucket.list_objects_iter(prefix="dir/obj-1", page_size=2)]
    assert names == sorted(n for n in CONTENT if n.startswith("dir/obj-1"))
    page = bucket.list_objects(page_size=5)
    assert len(page.entries) == 5
    assert page.continuation_token == page.entries[-1].name
    assert bucket.object("dir/obj-4.txt").head().size == len(CONTENT["dir/obj-4.txt"])
    big = bytes(range(256)) * (24 << 12)  # 24 MiB, streamed to disk chunk by chunk
    bucket.object("big.bin").get_writer().put_content(big)
    assert bucket.object("big.bin").get_reader().read_all() == big
    bucket.object("big.bin").delete()
    assert "big.bin" not in {e.name for e in bucket.list_all_objects()}
