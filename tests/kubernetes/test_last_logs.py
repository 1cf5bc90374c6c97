"""A stopped or aborted ETL on Kubernetes keeps its last pods' log tails until its next start or rm."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.jobrecorder import recent_jobs
from airflow_ais_etl.cluster.kubernetes.jobmap import jobs_config_map_name
from airflow_ais_etl.cluster.kubernetes.lastlogs import TAIL_LINES, last_logs_name
from airflow_ais_etl.cluster.leases import this_holder
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import AbortError, EtlNotFoundError, ValidationError
from airflow_ais_etl.operators.abort_report import abort_paragraph, clear_abort_error, failing_log_tail
from tests.kubernetes.conftest import make_bucket

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

CHATTY = (
    "import os, sys, time\n\n"
    "def transform(data):\n"
    "    print('transforming on', os.environ.get('AIS_TARGET_ID', '?'), file=sys.stderr, flush=True)\n"
    "    time.sleep(0.05)\n"
    "    return data.upper()\n"
)


def test_an_aborted_job_quotes_the_killed_pods_log_tail(
    api: AisEtl, cluster: Cluster, emulator: K8sEmulator, backend: KubernetesBackend
) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    make_bucket(src, [f"o-{i:03d}" for i in range(60)])
    api.init_code("chatty-etl", CHATTY)
    pod = next(e.pod_name for e in backend.endpoints("chatty-etl") if e.target_id == "node-a")
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            api.transform_bucket("chatty-etl", str(src), str(dst), OfflineOptions(num_workers=1))
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while not (dst.is_dir() and len(list(dst.glob("o-*"))) >= 6) and time.monotonic() < deadline:
        time.sleep(0.02)
    emulator.kill_container(cluster.namespace, pod, container="server")
    worker.join(120)
    err = outcome.get("error")
    assert isinstance(err, AbortError), err
    assert backend.endpoints("chatty-etl") == []  # the abort deleted the pods...

    # ...and kept their log tails, which the operator's abort paragraph quotes (same functions)
    target, tail = failing_log_tail(api, ["chatty-etl"], err.cause or "")
    assert target == "node-a"
    assert "transforming on" in tail
    report = str(
        clear_abort_error(
            err, "chatty-etl", abort_paragraph("chatty-etl", err.cause or "", {}, 1, 1), tail, target
        )
    )
    assert "Last lines of the log of target node-a's pod:" in report
    assert "transforming on" in report.split("Last lines of the log", 1)[1]

    # the job's registry (its own ConfigMap) names the holder and how the job ended
    [job] = recent_jobs(backend, "chatty-etl")
    assert (job["state"], job["cause"], job["holder_text"]) == (
        "aborted",
        err.cause,
        this_holder().describe(),
    )
    assert 0 < job["objects"] < 60

    # another worker reads the same tails (ConfigMap), bounded, per target
    other = cluster.backend()
    try:
        kept = other.logs("chatty-etl")
        assert sorted(p.target_id for p in kept) == ["node-a", "node-b"]
        assert all(len(p.logs.splitlines()) <= TAIL_LINES + 1 for p in kept)
        with pytest.raises(ValidationError, match="unknown target 'node-z'"):
            other.logs("chatty-etl", "node-z")
    finally:
        other.close()

    # a stop of the stopped ETL keeps them; the next start replaces them with the live logs; rm drops them
    api.stop("chatty-etl")
    assert backend.kube.read_config_map(last_logs_name("chatty-etl")) is not None
    api.start("chatty-etl")
    assert backend.kube.read_config_map(last_logs_name("chatty-etl")) is None
    assert all("transforming on" not in p.logs for p in api.logs("chatty-etl"))
    api.stop("chatty-etl")
    assert backend.kube.read_config_map(last_logs_name("chatty-etl")) is not None
    api.delete("chatty-etl")
    assert backend.kube.read_config_map(last_logs_name("chatty-etl")) is None
    assert backend.kube.read_config_map(jobs_config_map_name("chatty-etl")) is None
    with pytest.raises(EtlNotFoundError):
        backend.logs("chatty-etl")
