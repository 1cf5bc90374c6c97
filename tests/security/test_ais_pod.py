"""AIS's own transformer server (``aistore[etl]``) as an init-spec pod: it works, and what it exposes.

AIS's servers check no token, so while a job runs another local user who finds the pod's address
can have it fetch objects of the bucket that job granted, and nothing else: the gateway serves the
ETL only its running jobs' buckets. Once the job ends, the pod can fetch nothing at all.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import yaml

from airflow_ais_etl.cluster.bucketmap import bucket_name
from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.security.conftest import run_as_nobody, secret_file

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

AIS_SERVER = """
import os
from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer

class Upper(HTTPMultiThreadedServer):
    def transform(self, data, path, etl_args):
        return data.upper()

Upper(host=os.environ["POD_IP"], port=8000).start()
"""

ASK = r"""
import json, sys, urllib.request, urllib.error
out = []
for url in json.load(sys.stdin):
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            out.append([r.status, r.read().decode("latin-1")[:200]])
    except urllib.error.HTTPError as e:
        out.append([e.code, e.read().decode("latin-1")[:200]])
    except Exception as e:
        out.append([-1, repr(e)])
print(json.dumps(out))
"""


def _spec() -> str:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ais-upper"},
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "aistorage/transformer_upper:latest",
                    "command": [sys.executable, "-c", AIS_SERVER],
                    "ports": [{"name": "default", "containerPort": 8000}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
                }
            ]
        },
    }
    return yaml.safe_dump(pod)


def test_ais_server_pod_works_and_exposes_only_the_running_jobs_bucket(api: AisEtl, shared: Path) -> None:
    secret_path = secret_file(shared, b"root-only-ais-pod")
    src = shared / "src"
    src.mkdir()
    payload = {f"o{i}.txt": f"ais object {i}\n".encode() * 40 for i in range(8)}
    for name, data in payload.items():
        (src / name).write_bytes(data)
    api.init_spec("ais-upper", _spec(), comm_type="hpull://")
    stats = api.transform_bucket("ais-upper", str(src), str(shared / "dst"), OfflineOptions(num_workers=2))
    assert stats["objects"] == len(payload)
    for name, data in payload.items():
        assert (shared / "dst" / name).read_bytes() == data.upper()

    pod = api.backend.endpoints("ais-upper")[0].url
    bucket, vault = bucket_name(str(src))[0], bucket_name(str(secret_path.parent))[0]
    granted = f"{pod}/{quote(f'ais/@#/{bucket}/o1.txt', safe='')}"
    outside = f"{pod}/{quote(f'ais/@#/{vault}/secret.txt', safe='')}"
    with api.backend.grant("ais-upper", str(src)):  # a job of the owner is running
        during = run_as_nobody(ASK, json.dumps([granted, outside]))
    after = run_as_nobody(ASK, json.dumps([granted, outside]))
    assert during[0] == [200, payload["o1.txt"].upper().decode()[:200]]  # the documented exposure
    for status, body in [during[1], *after]:
        assert status != 200, body
        assert "ROOT-ONLY" not in body.upper()
        assert "AIS OBJECT" not in body.upper()
    api.stop("ais-upper")
