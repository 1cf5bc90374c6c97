"""Lifecycle of ETLs on the local backend: init, inline transforms, observability, stop, re-init."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psutil
import pytest

from airflow_ais_etl.etl.errors import EtlExistsError, EtlNotFoundError, ValidationError
from tests.local.conftest import UPPER

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

IO_UPPER = "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read().upper())\n"
AWKWARD = [
    "plain.txt",
    "with space.txt",
    "ünïcödé.txt",
    "per%cent.txt",
    "hash#tag.txt",
    "nested/dir/deep name.txt",
]


def make_bucket(root: Path, names: list[str]) -> dict[str, bytes]:
    data = {}
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = f"object {i} {name} ".encode() * (i + 1)
        path.write_bytes(payload)
        data[name] = payload
    return data


def pod_pids(api: AisEtl, name: str) -> set[int]:
    backend = api.backend
    pods = backend._pods(name)  # type: ignore[attr-defined]
    return {pid for pod in pods.values() for pid in pod.pids()}


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname or "", parts.port or 80)) == 0


@pytest.mark.integration
@pytest.mark.parametrize("comm_type", ["hpush://", "hpull://", "hrev://", "io://"])
def test_init_code_and_inline_transform_of_awkward_names(api: AisEtl, tmp_path: Path, comm_type: str) -> None:
    src = tmp_path / "src"
    data = make_bucket(src, AWKWARD)
    code = IO_UPPER if comm_type == "io://" else UPPER
    info = api.init_code("upper-etl", code, comm_type=comm_type)
    assert (info.state, info.pods, info.comm_type) == ("running", 2, comm_type)
    for name, payload in data.items():
        assert api.transform_object("upper-etl", str(src), name) == payload.upper(), name
    out = tmp_path / "out"
    summary = api.transform_object(
        "upper-etl", str(src), "nested/dir/deep name.txt", dst=str(out), dst_name="x/y.txt"
    )
    assert isinstance(summary, dict)
    assert (out / "x" / "y.txt").read_bytes() == data["nested/dir/deep name.txt"].upper()
    assert summary["bytes_out"] == len(data["nested/dir/deep name.txt"])
    assert api.info("upper-etl").stats["inline_objects"] == len(AWKWARD) + 1
    assert api.stop("upper-etl") is True


@pytest.mark.integration
def test_health_metrics_logs_show_view(api: AisEtl) -> None:
    api.init_code("observe-etl", UPPER)
    health = api.health("observe-etl")
    assert [h.target_id for h in health] == ["t1", "t2"]
    assert all(h.status == "Running" for h in health)
    metrics = api.metrics("observe-etl")
    assert [m.target_id for m in metrics] == ["t1", "t2"]
    assert all(m.mem > 1_000_000 and m.cpu >= 0 for m in metrics)
    logs = api.logs("observe-etl")
    assert len(logs) == 2
    assert all(pl.logs for pl in logs)
    assert [pl.target_id for pl in api.logs("observe-etl", "t2")] == ["t2"]
    with pytest.raises(ValidationError, match="unknown target 't9'"):
        api.logs("observe-etl", "t9")
    [listed] = api.list()
    assert (listed.name, listed.state, listed.kind, listed.runtime) == (
        "observe-etl",
        "running",
        "code",
        listed.runtime,
    )
    view = api.view("observe-etl")
    assert view.code == UPPER
    assert view.comm_type == "hpush://"
    assert view.timeout == 45.0
    running = {pl.target_id: pl.logs for pl in api.logs("observe-etl")}
    api.stop("observe-etl")
    # a stopped (or aborted) ETL's last pods keep their logs until it starts again; gone with the ETL
    left = {pl.target_id: pl.logs for pl in api.logs("observe-etl")}
    assert list(left) == ["t1", "t2"]
    assert all(left[tid].startswith(running[tid]) for tid in running)
    assert [pl.pod_name for pl in api.logs("observe-etl", "t2")] == ["observe-etl-t2"]
    with pytest.raises(ValidationError, match="unknown target 't9'"):
        api.logs("observe-etl", "t9")
    api.delete("observe-etl")
    with pytest.raises(EtlNotFoundError, match="observe-etl"):
        api.logs("observe-etl")


@pytest.mark.integration
def test_stop_and_stop_all_leave_no_process_or_port(api: AisEtl) -> None:
    api.init_code("first-etl", UPPER)
    api.init_code("second-etl", UPPER, comm_type="hpull")
    pids = pod_pids(api, "first-etl") | pod_pids(api, "second-etl")
    urls = [e.url for n in ("first-etl", "second-etl") for e in api.backend.endpoints(n)]
    assert len(pids) >= 4
    assert all(listening(u) for u in urls)
    assert api.stop("first-etl") is True
    assert api.stop("first-etl") is False  # idempotent: a teardown never fails on it
    assert sorted(api.stop_all()) == ["second-etl"]
    assert api.stop_all() == []
    assert not [
        p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not [u for u in urls if listening(u)]
    assert {i.name: i.state for i in api.list()} == {"first-etl": "stopped", "second-etl": "stopped"}
    with pytest.raises(EtlNotFoundError, match="never-defined"):
        api.stop("never-defined")


@pytest.mark.integration
def test_reinit_start_and_delete_rules(api: AisEtl) -> None:
    api.init_code("rules-etl", UPPER)
    pids = pod_pids(api, "rules-etl")
    again = api.init_code("rules-etl", UPPER)  # identical: a no-op reporting the running ETL
    assert again.state == "running"
    assert pod_pids(api, "rules-etl") == pids
    other = "def transform(data):\n    return data[::-1]\n"
    with pytest.raises(EtlExistsError, match="different definition"):
        api.init_code("rules-etl", other)
    assert pod_pids(api, "rules-etl") == pids
    replaced = api.init_code("rules-etl", other, replace=True)
    assert replaced.state == "running"
    assert not (pod_pids(api, "rules-etl") & pids)
    assert api.view("rules-etl").code == other  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="stop it first"):
        api.delete("rules-etl")
    api.stop("rules-etl")
    started = api.start("rules-etl")
    assert started.state == "running"
    api.backend.add_stats("rules-etl", {"inline_objects": 3})
    api.delete("rules-etl", force=True)
    with pytest.raises(EtlNotFoundError):
        api.view("rules-etl")
    assert api.backend.stats("rules-etl") == {}  # a later ETL of that name starts afresh
    assert api.backend.endpoints("rules-etl") == []


SPEC_RUNTIME_IMAGE = """
apiVersion: v1
kind: Pod
metadata:
  name: spec-from-image
spec:
  containers:
    - name: server
      image: airflow-ais-etl/runtime-python:3.11v2
      ports: [{name: default, containerPort: 8080}]
      env:
        - {name: AIS_ETL_CODE_DIR, value: "@CODE@"}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
      readinessProbe: {httpGet: {path: /health, port: default}}
"""

SPEC_LOCAL_COMMAND = """
apiVersion: v1
kind: Pod
metadata:
  name: spec-local-command
spec:
  containers:
    - name: server
      image: example.com/whatever:1.0
      command: ["python", "-m", "airflow_ais_etl.runtime"]
      ports: [{name: default, containerPort: 8080}]
      env:
        - {name: AIS_ETL_CODE_DIR, value: "@CODE@"}
        - {name: FUNC_TRANSFORM, value: shout}
      readinessProbe: {httpGet: {path: /health, port: default}}
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    "spec", [SPEC_RUNTIME_IMAGE, SPEC_LOCAL_COMMAND], ids=["runtime-image", "local-command"]
)
def test_init_spec_runs_locally(api: AisEtl, tmp_path: Path, spec: str) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "code.py").write_text(UPPER + "shout = transform\n")
    src = tmp_path / "src"
    make_bucket(src, ["a.txt"])
    api.init_spec("spec-etl", spec.replace("@CODE@", str(code_dir)))
    assert api.transform_object("spec-etl", str(src), "a.txt") == (src / "a.txt").read_bytes().upper()
    api.stop("spec-etl")


@pytest.mark.integration
def test_init_spec_with_an_image_that_cannot_run_locally_says_so(api: AisEtl) -> None:
    spec = SPEC_LOCAL_COMMAND.replace('command: ["python", "-m", "airflow_ais_etl.runtime"]', "")
    with pytest.raises(ValidationError, match="cannot run locally"):
        api.init_spec("nolocal-etl", spec)
    assert api.backend.endpoints("nolocal-etl") == []
    assert api.list() == []


def test_default_home_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow_ais_etl.cluster.local.state import default_home

    monkeypatch.delenv("AIS_ETL_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_home() == tmp_path / "airflow-ais-etl"
    monkeypatch.setenv("AIS_ETL_HOME", "~/x")
    assert default_home() == __import__("pathlib").Path(os.path.expanduser("~/x"))


ENV_ECHO = "import os\n\ndef transform(data):\n    return os.environ['GREETING'].encode() + data\n"


@pytest.mark.integration
def test_extra_env_reaches_the_pods_and_survives_stop_and_start(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_bucket(src, ["a.txt"])
    payload = (src / "a.txt").read_bytes()
    api.init_code("env-etl", ENV_ECHO, env={"GREETING": "hi:"})
    assert api.transform_object("env-etl", str(src), "a.txt") == b"hi:" + payload
    api.init_code("env-etl", ENV_ECHO, env={"GREETING": "hi:"})  # identical: a no-op
    with pytest.raises(EtlExistsError):
        api.init_code("env-etl", ENV_ECHO, env={"GREETING": "other"})
    api.stop("env-etl")
    api.start("env-etl")
    assert api.transform_object("env-etl", str(src), "a.txt") == b"hi:" + payload
    api.stop("env-etl")
