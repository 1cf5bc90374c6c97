"""The embedded ``local`` backend: targets are local "nodes", transformation pods are processes.

Every pod is materialised from the model's Pod spec and run by the pod runner; every target
runs a gateway process that serves ``AIS_TARGET_URL``. All state lives under the home directory,
so init, transform and stop may run in different processes (different Airflow tasks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import yaml

from airflow_ais_etl.cluster.base import (
    Backend,
    BucketRef,
    HealthStatus,
    MembershipWatch,
    PodEndpoint,
    PodLogs,
    PodMetrics,
    PodStatus,
)
from airflow_ais_etl.cluster.local.gateways import LocalGateways
from airflow_ais_etl.cluster.local.network import free_loopback_ip, probe_http, readiness_url
from airflow_ais_etl.cluster.local.podoptions import local_pod_meta
from airflow_ais_etl.cluster.local.podplan import container_port
from airflow_ais_etl.cluster.local.podrunner import start_pod
from airflow_ais_etl.cluster.local.processes import LocalPod, stop_pod
from airflow_ais_etl.cluster.local.startup import wait_ready
from airflow_ais_etl.cluster.local.state import (
    DEFAULT_TARGETS,
    LocalState,
    default_home,
    locked,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from airflow_ais_etl.etl.errors import EtlError, EtlNotFoundError, ValidationError
from airflow_ais_etl.etl.md import EtlMD
from airflow_ais_etl.etl.msg import InitCodeMsg, InitMsg, InitSpecMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podspec import Target, prepare_pod
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIME_SERVER_COMMAND, is_runtime_image

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

STOP_GRACE = 10.0
WATCH_INTERVAL = 0.25


def _image_command(image: str) -> list[str] | None:
    return list(RUNTIME_SERVER_COMMAND) if is_runtime_image(image) else None


def _deps_key(deps: str | None) -> str:
    return hashlib.sha256((deps or "").encode()).hexdigest()[:16]


class _Watch(MembershipWatch):
    def __init__(self, backend: LocalBackend, name: str, on_change: Callable[[str], None]) -> None:
        self._backend = backend
        self._name = name
        self._on_change = on_change
        self._stop = threading.Event()
        self._baseline = backend._snapshot(name)
        self._thread = threading.Thread(target=self._run, name=f"etl-aborter-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                cause = self._backend.membership_cause(self._name, self._baseline)
            except Exception as exc:  # a watch must never die silently
                cause = f"membership check failed: {exc}"
            if cause:
                self._on_change(cause)
                return

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)


class LocalBackend(Backend):
    """A cluster of local targets whose pods are processes on this machine."""

    kind = "local"

    def __init__(self, home: str | Path | None = None, *, default_targets: int = DEFAULT_TARGETS) -> None:
        self.state = LocalState(Path(home) if home else default_home())
        self.gateways = LocalGateways(self.state)
        self._default_targets = default_targets

    # ---------------------------------------------------------------- targets and gateways
    def targets(self) -> list[Target]:
        cluster = self._ensure_cluster()
        return [Target(tid, t["node"]) for tid, t in sorted(cluster["targets"].items(), key=_tid_order)]

    def cluster_version(self) -> int:
        return int(self._ensure_cluster()["version"])

    def _ensure_cluster(self) -> dict[str, Any]:
        cluster = self.state.cluster()
        if cluster["version"] == 0:
            with self.state.lock():
                cluster = self.state.cluster()
                if cluster["version"] == 0:
                    for i in range(1, self._default_targets + 1):
                        cluster["targets"][f"t{i}"] = {"node": f"local-t{i}"}
                    cluster["version"] = 1
                    write_json_atomic(self.state.cluster_file, cluster)
        return cluster

    def add_target(self, tid: str | None = None) -> Target:
        """Add a target (membership change: running ETLs are aborted, as the reference does)."""
        self._ensure_cluster()
        with self.state.lock():
            cluster = self.state.cluster()
            if tid is None:
                n = 1
                while f"t{n}" in cluster["targets"]:
                    n += 1
                tid = f"t{n}"
            _validate_target_id(tid)
            if tid in cluster["targets"]:
                raise ValidationError(f"target {tid} already exists; choose another id or omit it")
            cluster["targets"][tid] = {"node": f"local-{tid}"}
            cluster["version"] += 1
            write_json_atomic(self.state.cluster_file, cluster)
        self._abort_all(f"target {tid} joined")
        return Target(tid, f"local-{tid}")

    def remove_target(self, tid: str) -> None:
        """Remove a target: its gateway stops, every running ETL is aborted with the cause."""
        self._ensure_cluster()
        with self.state.lock():
            cluster = self.state.cluster()
            if tid not in cluster["targets"]:
                known = ", ".join(sorted(cluster["targets"])) or "none"
                raise ValidationError(f"unknown target {tid!r} (targets: {known})")
            if len(cluster["targets"]) == 1:
                raise ValidationError(f"cannot remove {tid}: it is the last target")
            del cluster["targets"][tid]
            cluster["version"] += 1
            write_json_atomic(self.state.cluster_file, cluster)
        self._abort_all(f"target {tid} left")
        self.gateways.stop([tid])

    def _abort_all(self, cause: str) -> None:
        for name in self.state.etl_names():
            if self._pods(name):
                self.abort(name, cause)

    def abort(self, name: str, cause: str) -> None:
        """Record why ``name`` is aborted (running jobs read it) and stop its pods everywhere."""
        if self.state.etl_dir(name).exists():
            self.state.aborted_file(name).write_text(cause)
        log.warning("etl %s: %s, aborting...", name, cause)
        self.stop_pods(name)

    def target_url(self, tid: str) -> str:
        """Return ``AIS_TARGET_URL`` of target ``tid`` (its gateway is started if needed)."""
        return self.gateways.url(tid)

    # ---------------------------------------------------------------- metadata and buckets
    def read_md(self) -> EtlMD:
        text = self.state.md_file.read_text() if self.state.md_file.exists() else ""
        return EtlMD.from_json(text) if text else EtlMD()

    def update_md(self, change: Callable[[EtlMD], object]) -> EtlMD:
        with self.state.lock():
            md = self.read_md()
            change(md)
            write_text_atomic(self.state.md_file, md.to_json())
            return md

    def bucket_ref(self, url: str) -> BucketRef:
        from airflow_ais_etl.cluster.gateway import register_bucket

        return register_bucket(str(self.state.buckets_file), url)

    # ---------------------------------------------------------------- pods
    def _pods(self, name: str) -> dict[str, LocalPod]:
        pods = {}
        etl_dir = self.state.etl_dir(name)
        if not etl_dir.exists():
            return {}
        for pod_json in sorted(etl_dir.glob("*/pod.json")):
            pods[pod_json.parent.name] = LocalPod.from_dict(json.loads(pod_json.read_text()))
        return pods

    def start_pods(
        self,
        msg: InitMsg,
        *,
        extra_env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        pod_options: Mapping[str, Any] | None = None,
    ) -> list[PodEndpoint]:
        if self._pods(msg.name):
            raise EtlError("etl is already running on this cluster; stop it first", etl_name=msg.name)
        env = dict(extra_env or {})
        volume_dirs: dict[str, Path] = {}
        if isinstance(msg, InitCodeMsg):
            template = code_pod_spec(msg)
            env.update(code_env(msg))
            volume_dirs["runtime"] = self.state.deps_dir(_deps_key(msg.dependencies))
        elif isinstance(msg, InitSpecMsg):
            template = parse_pod_spec(msg.spec, etl_name=msg.name)
        else:
            raise ValidationError(f"unsupported init message kind {type(msg).__name__}", etl_name=msg.name)
        etl_dir = self.state.etl_dir(msg.name)
        self._clear_pod_dirs(msg.name)
        meta = local_pod_meta(msg.name, labels, annotations, pod_options)
        started: list[tuple[Target, LocalPod]] = []
        try:
            with self.state.pods_lock(shared=True):  # gateways stay up until our pods are recorded
                for target in self.targets():
                    started.append((target, self._start_one(msg, template, target, env, volume_dirs, meta)))
            wait_ready(msg, started, lambda tid: self._pod_spec(msg.name, tid))
        except BaseException:
            for _target, pod in started:
                stop_pod(pod, grace=2)
            self._clear_pod_dirs(msg.name)
            self._stop_idle_gateways()
            raise
        write_json_atomic(etl_dir / "membership.json", self._membership())
        return self.endpoints(msg.name)

    def _start_one(
        self,
        msg: InitMsg,
        template: dict[str, Any],
        target: Target,
        env: Mapping[str, str],
        volume_dirs: Mapping[str, Path],
        meta: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {}),
    ) -> LocalPod:
        """Start the pod of ``msg`` on ``target``; ``meta`` (labels, annotations) only lands in pod.yaml."""
        prepared = prepare_pod(
            template,
            msg,
            target,
            target_url=self.target_url(target.id),
            extra_env=env,
            labels=meta[0],
            annotations=meta[1],
            io_server_command=None,
        )
        pod_dir = self.state.pod_dir(msg.name, target.id)
        pod_dir.mkdir(parents=True, exist_ok=True)
        (pod_dir / "pod.yaml").write_text(yaml.safe_dump(_redact(prepared.pod), sort_keys=False))
        port = container_port(prepared.pod["spec"])
        ip = free_loopback_ip(port)
        ctx = {"etl_name": msg.name, "target": target.id, "pod_name": prepared.pod_name}
        try:
            with _maybe_lock(volume_dirs.get("runtime")):
                pod = start_pod(
                    prepared.pod,
                    pod_dir,
                    ip=ip,
                    node_name=target.node,
                    volume_dirs=volume_dirs,
                    image_command=_image_command,
                    extra_base_env={"POD_IP": ip},
                )
        except EtlError as exc:
            raise exc.with_context(**ctx) from None
        data = pod.to_dict()
        data["io_command"] = prepared.io_command
        write_json_atomic(pod_dir / "pod.json", data)
        return pod

    def _clear_pod_dirs(self, name: str) -> None:
        etl_dir = self.state.etl_dir(name)
        if etl_dir.exists():
            for child in etl_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
        self.state.aborted_file(name).unlink(missing_ok=True)

    def aborted_cause(self, name: str) -> str | None:
        path = self.state.aborted_file(name)
        return path.read_text() if path.exists() else None

    def _pod_spec(self, name: str, tid: str) -> dict[str, Any]:
        spec: dict[str, Any] = yaml.safe_load((self.state.pod_dir(name, tid) / "pod.yaml").read_text())
        return spec

    def stop_pods(self, name: str) -> bool:
        pods = self._pods(name)
        stopping = self.state.stopping_file(name)
        if pods:  # running jobs' watches then name the stop, not the pods' exits it causes
            stopping.write_text(f"etl {name} stopped")
        try:
            for pod in pods.values():
                stop_pod(pod, grace=STOP_GRACE)
            for tid in pods:
                (self.state.pod_dir(name, tid) / "pod.json").unlink(missing_ok=True)
        finally:
            stopping.unlink(missing_ok=True)
        self._stop_idle_gateways()
        return bool(pods)

    def _stop_idle_gateways(self) -> None:
        """Stop the target gateways once no pod runs, so no process outlives the last ETL."""
        with self.state.pods_lock(shared=False):
            if not self.state.any_pods():
                self.gateways.stop(t.id for t in self.targets())

    def endpoints(self, name: str) -> list[PodEndpoint]:
        out = []
        for tid, pod in self._pods(name).items():
            data = json.loads((self.state.pod_dir(name, tid) / "pod.json").read_text())
            io_command = tuple(data["io_command"]) if data.get("io_command") else None
            out.append(PodEndpoint(tid, pod.name, pod.url, io_command))
        return out

    # ---------------------------------------------------------------- observability
    def health(self, name: str) -> list[HealthStatus]:
        pods = self._require(name)
        out = []
        for tid, pod in pods.items():
            exited = pod.exited()
            if exited:
                detail = f"container {exited[0]} exited with code {exited[1]}"
                out.append(HealthStatus(tid, pod.name, PodStatus.FAILED, detail))
                continue
            url = readiness_url(self._pod_spec(name, tid), pod.ip)
            ready, detail = probe_http(url, timeout=5) if url else (True, "")
            out.append(
                HealthStatus(tid, pod.name, PodStatus.RUNNING if ready else PodStatus.NOT_READY, detail)
            )
        return out

    def metrics(self, name: str) -> list[PodMetrics]:
        pods = self._require(name)
        procs: dict[str, list[psutil.Process]] = {}
        for tid, pod in pods.items():
            procs[tid] = _process_tree(pod)
            for p in procs[tid]:
                with contextlib.suppress(psutil.Error):
                    p.cpu_percent(None)
        time.sleep(0.25)
        out = []
        for tid, pod in pods.items():
            cpu, mem = 0.0, 0
            for p in procs[tid]:
                with contextlib.suppress(psutil.Error):
                    cpu += p.cpu_percent(None) / 100.0
                    mem += p.memory_info().rss
            out.append(PodMetrics(tid, pod.name, round(cpu, 3), mem))
        return out

    def logs(self, name: str, target_id: str | None = None) -> list[PodLogs]:
        pods = self._require(name)
        if target_id is not None and target_id not in pods:
            raise ValidationError(f"unknown target {target_id!r} for etl {name} (targets: {', '.join(pods)})")
        return [PodLogs(tid, p.name, p.log_text()) for tid, p in pods.items() if target_id in (None, tid)]

    def _require(self, name: str) -> dict[str, LocalPod]:
        pods = self._pods(name)
        if not pods:
            raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
        return pods

    # ---------------------------------------------------------------- membership
    def _membership(self) -> dict[str, Any]:
        cluster = self._ensure_cluster()
        return {"version": cluster["version"], "targets": sorted(cluster["targets"])}

    def _snapshot(self, name: str) -> dict[str, Any]:
        return read_json(self.state.etl_dir(name) / "membership.json", self._membership())

    def membership_cause(self, name: str, baseline: Mapping[str, Any]) -> str | None:
        """Return what changed since ``baseline`` for ETL ``name`` (None when nothing did)."""
        for path in (self.state.aborted_file(name), self.state.stopping_file(name)):
            with contextlib.suppress(FileNotFoundError):
                return path.read_text()
        now = self._membership()
        left = sorted(set(baseline["targets"]) - set(now["targets"]))
        joined = sorted(set(now["targets"]) - set(baseline["targets"]))
        if left or joined:
            return ", ".join([f"target {t} left" for t in left] + [f"target {t} joined" for t in joined])
        pods = self._pods(name)
        if not pods:
            return f"etl {name} stopped"
        for tid, pod in pods.items():
            exited = pod.exited()
            if exited:
                return f"pod of {tid} exited with code {exited[1]}"
        return None

    def watch_membership(self, name: str, on_change: Callable[[str], None]) -> MembershipWatch:
        return _Watch(self, name, on_change)

    # ---------------------------------------------------------------- stats
    def add_stats(self, name: str, delta: Mapping[str, int]) -> None:
        path = self.state.etl_dir(name) / "stats.json"
        with self.state.lock():
            stats = read_json(path, {})
            for k, v in delta.items():
                stats[k] = stats.get(k, 0) + int(v)
            write_json_atomic(path, stats)

    def stats(self, name: str) -> dict[str, int]:
        data: dict[str, int] = read_json(self.state.etl_dir(name) / "stats.json", {})
        return data

    def forget(self, name: str) -> None:
        """Remove every trace of a stopped ETL's local state."""
        shutil.rmtree(self.state.etl_dir(name), ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every pod and every gateway of this home (tests and ``cluster destroy``)."""
        for name in self.state.etl_names():
            self.stop_pods(name)
        self.gateways.stop(t.id for t in self.targets())


def _tid_order(item: tuple[str, Any]) -> tuple[int, str]:
    tid = item[0]
    digits = tid[1:]
    return (int(digits) if digits.isdigit() else 1 << 30, tid)


def _validate_target_id(tid: str) -> None:
    if not tid or len(tid) > 20 or not all(c.isalnum() or c in "-_" for c in tid):
        raise ValidationError(f"invalid target id {tid!r}: use up to 20 letters, digits, '-' or '_'")


def _redact(pod: dict[str, Any]) -> dict[str, Any]:
    """Return the pod spec without the code/deps env values (they live in the volumes)."""
    data = json.loads(json.dumps(pod))
    spec = data.get("spec", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for e in c.get("env") or []:
            if e.get("name") in ("AISTORE_CODE", "AISTORE_DEPS"):
                e["value"] = "<redacted: see volumes>"
    return data


def _process_tree(pod: LocalPod) -> list[psutil.Process]:
    out = []
    for c in pod.containers:
        with contextlib.suppress(psutil.Error):
            shim = psutil.Process(c.shim_pid)
            out.extend(shim.children(recursive=True))
    return out


def _maybe_lock(path: Path | None) -> contextlib.AbstractContextManager[None]:
    """Serialise pods that share a dependency directory while their init containers run."""
    return locked(path.with_name(path.name + ".lock")) if path else contextlib.nullcontext()
