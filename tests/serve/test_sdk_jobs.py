"""AIStore's documented ``init_class`` example runs unchanged against ``ais-etl serve``; a bucket
transform aborts, as AIS reports it, when a target leaves the cluster."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer

from airflow_ais_etl.cluster.local.backend import LocalBackend
from tests.serve.ais_docs_example import INIT_CLASS_SNIPPET, TESTING_SNIPPET
from tests.serve.conftest import RUNTIME_IMAGE, start_server, stop_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from aistore.sdk import Client

    from tests.serve.conftest import Served

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("serve-sdk-jobs")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One target (one pod per ETL): the docs' init_class pod runs two FastAPI workers of its own."""
    server = start_server(tmp_path_factory.mktemp("serve-jobs"), targets=1)
    yield server
    stop_server(server)


SLOW_CODE = "import time\n\ndef transform(data):\n    time.sleep(0.05)\n    return data.upper()\n"


def test_the_init_class_example_from_ais_docs_runs_unchanged(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = {"client": client, "FastAPIServer": FastAPIServer}
    exec(INIT_CLASS_SNIPPET, namespace)  # the SDK's own init_class: AIS's runtime_python image
    exec(TESTING_SNIPPET, namespace)
    # (the docs' "# Output:" comments drop the dash; the SDK prints what it reads)
    assert capsys.readouterr().out.splitlines() == ["b'Hello ais-etl!'", "b'HELLO AIS-ETL!'"]
    details = client.etl("etl-upper-case").view()
    assert details.init_msg.runtime.image.startswith("aistorage/runtime_python:")
    client.etl("etl-upper-case").stop()
    client.etl("etl-upper-case").delete()


def test_bucket_transform_aborts_when_a_target_leaves(served: Served, client: Client, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "code.py").write_text(SLOW_CODE)
    src = client.bucket("abort-src").create()
    for i in range(200):  # a bucket is a directory: fill it directly (200 SDK PUTs cost seconds)
        (served.buckets / "abort-src" / f"o-{i:03d}").write_bytes(b"payload %d" % i)
    LocalBackend(served.home).add_target("t2")
    client.etl("slow-etl").init(image=RUNTIME_IMAGE, AIS_ETL_CODE_DIR=str(code))
    job_id = src.transform("slow-etl", client.bucket("abort-dst"), num_workers=2)
    dst_dir = served.buckets / "abort-dst"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(dst_dir.glob("o-*"))) < 5:
        time.sleep(0.05)
    LocalBackend(served.home).remove_target("t2")

    result = client.job(job_id).wait(timeout=60, verbose=False)
    assert not result.success
    assert "target t2 left" in result.error
    status = client.job(job_id).status()
    assert status.aborted
    assert status.end_time > 0
    assert [(e.id, e.stage) for e in client.cluster().list_etls(stages=["Aborted"])] == [
        ("slow-etl", "Aborted")
    ]
    written = sorted(p.name for p in dst_dir.glob("o-*"))
    assert 5 <= len(written) < 200  # aborted part-way; every object written is complete
    for name in written:
        assert (dst_dir / name).read_bytes() == b"PAYLOAD %d" % int(name[2:])
