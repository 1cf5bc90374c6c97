"""Jobs started outside Airflow (the ``ais-etl`` CLI) appear in the ETL view, with progress and final state.

Served by the provider's plugin as the api-server mounts it (Airflow's app in a TestClient, signed
in through the simple auth manager); the job runs in a separate ``ais-etl bucket`` process.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.service import AisEtl
from tests.airflow.conftest import _airflow_home_cleanup, airflow_db, ais_home  # noqa: F401
from tests.kubernetes.conftest import make_bucket

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

pytestmark = [pytest.mark.integration]

SLOW_UPPER = "import time\n\ndef transform(data):\n    time.sleep(0.05)\n    return data.upper()\n"
COUNT = 160
CLI = str(Path(sys.executable).parent / "ais-etl")


@pytest.fixture
def view(airflow_db: Path, ais_home: Path) -> Iterator[TestClient]:  # noqa: F811
    """A client of the api-server's app (with the provider's plugin), signed in as an admin."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "registry-test-" * 6)
        app = create_app("core")
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="viewer-test", role="admin"))
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            yield client


def _etl(client: TestClient, name: str) -> dict[str, Any]:
    resp = client.get("/ais-etl/api/etls")
    assert resp.status_code == 200, resp.text
    for conn in resp.json()["connections"]:
        assert not conn["error"], conn
        for etl in conn["etls"]:
            if etl["name"] == name:
                return dict(etl)
    raise AssertionError(f"etl {name} not listed: {resp.json()}")


def test_a_cli_job_is_listed_with_its_holder_progress_and_final_state(
    view: TestClient,
    ais_home: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    api = AisEtl.local(str(ais_home))
    api.init_code("cli-etl", SLOW_UPPER)
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_bucket(src, [f"o-{i:03d}" for i in range(COUNT)])
    job = subprocess.Popen(
        [CLI, "bucket", "cli-etl", str(src), str(dst), "--num-workers", "1"],
        env={**os.environ, "AIS_ETL_HOME": str(ais_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        running: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and job.poll() is None:
            running = [
                j for j in _etl(view, "cli-etl")["jobs"] if j["state"] == "running" and j.get("objects")
            ]
            if running:
                break
            time.sleep(0.2)
        assert running, "the CLI job never showed as running with progress"
        record = running[0]
        assert record["holder"] == f"user {getpass.getuser()}@{os.uname().nodename} (pid {job.pid})"
        assert 0 < record["objects"] < COUNT
        assert record["planned_objects"] == COUNT
        assert record["src"].endswith(str(src))
        assert record["dst"].endswith(str(dst))
        assert "task_id" not in record  # not an Airflow task: no task link
        out, _ = job.communicate(timeout=120)
        assert job.returncode == 0, out
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()

    listed = _etl(view, "cli-etl")
    final = [j for j in listed["jobs"] if j["id"] == record["id"]]
    assert [(j["state"], j["objects"], j["error_count"]) for j in final] == [("done", COUNT, 0)]
    assert listed["aborts"] == []
