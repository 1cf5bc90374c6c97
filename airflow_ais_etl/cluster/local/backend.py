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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from airflow_ais_etl.cluster.gatewaypaths import local_root
from airflow_ais_etl.cluster.local.access import LocalAccess
from airflow_ais_etl.cluster.local.events import (
    Event,
    earliest,
    membership_events,
    pod_exit_events,
    read_event,
    write_event,
)
from airflow_ais_etl.cluster.local.gateways import LocalGateways
from airflow_ais_etl.cluster.local.homelock import home_lock
from airflow_ais_etl.cluster.local.jobstore import LocalJobs
from airflow_ais_etl.cluster.local.leasestore import LocalLeases
from airflow_ais_etl.cluster.local.network import free_loopback_ip, probe_http, readiness_url
from airflow_ais_etl.cluster.local.podlogs import pod_logs
from airflow_ais_etl.cluster.local.podmetrics import pod_metrics
from airflow_ais_etl.cluster.local.podoptions import local_pod_meta
from airflow_ais_etl.cluster.local.podplan import container_port
from airflow_ais_etl.cluster.local.podrunner import start_pod
from airflow_ais_etl.cluster.local.processes import LocalPod, stop_pod, stop_pods
from airflow_ais_etl.cluster.local.startup import check_ready, wait_ready
from airflow_ais_etl.cluster.local.state import (
    DEFAULT_TARGETS,
    LocalState,
    default_home,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from airflow_ais_etl.cluster.local.targetids import tid_order, validate_target_id
from airflow_ais_etl.cluster.local.watch import PollingWatch
from airflow_ais_etl.cluster.private import locked
from airflow_ais_etl.etl.constants import TOKEN_ENV
from airflow_ais_etl.etl.errors import EtlError, EtlNotFoundError, ValidationError
from airflow_ais_etl.etl.md import EtlMD
from airflow_ais_etl.etl.msg import InitCodeMsg, InitMsg, InitSpecMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podspec import Target, prepare_pod
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import local_image_command
from airflow_ais_etl.runtime.bucketfiles import process_umask
from airflow_ais_etl.runtime.filewire import FILE_SOCKET_ENV, FILE_SOCKET_NAME

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_ais_etl.cluster.directput import DirectPutGrant

log = logging.getLogger(__name__)

STOP_GRACE = 10.0
ABORT_GRACE = 2.0
"""Seconds an aborted ETL's pods get to exit before SIGKILL (AIS's ``DefaultAbortTimeout``)."""


def _deps_key(deps: str | None) -> str:
    return hashlib.sha256((deps or "").encode()).hexdigest()[:16]


class LocalBackend(LocalLeases, LocalJobs, Backend):
    """A cluster of local targets whose pods are processes on this machine."""

    kind = "local"

    def __init__(self, home: str | Path | None = None, *, default_targets: int = DEFAULT_TARGETS) -> None:
        self.state = LocalState(Path(home) if home else default_home())
        self.gateways = LocalGateways(self.state)
        self.access = LocalAccess(self.state, self.gateways)
        self._default_targets = default_targets

    # ---------------------------------------------------------------- targets and gateways
    def targets(self) -> list[Target]:
        cluster = self._ensure_cluster()
        return [Target(tid, t["node"]) for tid, t in sorted(cluster["targets"].items(), key=tid_order)]

    def cluster_version(self) -> int:
        return int(self._ensure_cluster()["version"])

    def running_names(self) -> list[str]:
        return [name for name in self.state.etl_names() if self._pods(name)]

    def lifecycle(self) -> contextlib.AbstractContextManager[None]:
        """Serialise init, start, stop, rm and membership changes on this home (all processes)."""
        return home_lock(self.state.home).hold()

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
        with self.lifecycle():
            with self.state.lock():
                cluster = self.state.cluster()
                tid = tid or next(f"t{n}" for n in range(1, 1 << 20) if f"t{n}" not in cluster["targets"])
                validate_target_id(tid)
                if tid in cluster["targets"]:
                    raise ValidationError(f"target {tid} already exists; choose another id or omit it")
                cluster["targets"][tid] = {"node": f"local-{tid}"}
                self._bump(cluster)
            self._abort_all(f"target {tid} joined", cluster["changed_at"])
        return Target(tid, f"local-{tid}")

    def remove_target(self, tid: str) -> None:
        """Remove a target: its gateway stops, every running ETL is aborted with the cause."""
        self._ensure_cluster()
        with self.lifecycle():
            with self.state.lock():
                cluster = self.state.cluster()
                if tid not in cluster["targets"]:
                    known = ", ".join(sorted(cluster["targets"])) or "none"
                    raise ValidationError(f"unknown target {tid!r} (targets: {known})")
                if len(cluster["targets"]) == 1:
                    raise ValidationError(f"cannot remove {tid}: it is the last target")
                del cluster["targets"][tid]
                self._bump(cluster)
            self._abort_all(f"target {tid} left", cluster["changed_at"])
            self.gateways.stop([tid])

    def _bump(self, cluster: dict[str, Any]) -> None:
        """Write a membership change, stamped with its time (what aborted jobs report first)."""
        cluster["version"] += 1
        cluster["changed_at"] = time.time()
        write_json_atomic(self.state.cluster_file, cluster)

    def _abort_all(self, cause: str, at: float) -> None:
        for name in self.state.etl_names():
            if self._pods(name):
                self.abort(name, cause, at=at)

    def abort(self, name: str, cause: str, *, at: float | None = None) -> None:
        """Record why ``name`` is aborted (running jobs read it) and stop its pods everywhere.

        ``at`` is when the cause happened (default: now); the pods get :data:`ABORT_GRACE` seconds.
        """
        with self.lifecycle():
            if self.state.etl_dir(name).exists():
                write_event(self.state.aborted_file(name), cause, at)
            log.warning("etl %s: %s, aborting...", name, cause)
            self.stop_pods(name, grace=ABORT_GRACE)

    def target_url(self, tid: str, name: str) -> str:
        """Return ``AIS_TARGET_URL`` of target ``tid`` for ETL ``name`` (its gateway starts if needed)."""
        return self.access.target_url(tid, name)

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
        """Name the bucket at ``url`` (pods read it only while a job grants it: :meth:`grant`)."""
        return self.access.bucket_ref(url)

    def grant(self, name: str, url: str) -> contextlib.AbstractContextManager[BucketRef]:
        return self.access.grant(name, url)

    def direct_put_grant(self, name: str, url: str, conn_id: str | None = None) -> DirectPutGrant | None:
        """Grant ETL ``name``'s pods a destination through the targets' gateways for one job.

        The gateway opens object stores with its own environment's credentials, as it does for
        hpull's reads: a destination that needs an Airflow connection (``conn_id``) is written by
        the engine, since the gateway cannot resolve the job's connection.
        """
        from airflow_ais_etl.cluster.directput import DirectPutGrant, FileTokens, puts_store

        if conn_id and local_root(url) is None:
            return None
        ref = self.access.bucket_ref(url)
        store = puts_store(str(self.state.grants_dir()))
        tokens = FileTokens(store, ref.name, ref.extra["url"], process_umask())  # results: the engine's modes
        return DirectPutGrant(ref.name, lambda tid: _origin(self.target_url(tid, name)), tokens)

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
        wait: bool = True,
    ) -> list[PodEndpoint]:
        meta = local_pod_meta(msg.name, labels, annotations, pod_options)
        with self.lifecycle():
            return self._start_pods(msg, extra_env or {}, meta, wait)

    def check_started(self, msg: InitMsg, elapsed: float) -> bool:
        pods = self._pods(msg.name)
        started = [(t, pods.get(t.id)) for t in self.targets()]
        return check_ready(msg, started, lambda tid: self._pod_spec(msg.name, tid), elapsed)

    def _start_pods(
        self,
        msg: InitMsg,
        extra_env: Mapping[str, str],
        meta: tuple[Mapping[str, str], Mapping[str, str]],
        wait: bool,
    ) -> list[PodEndpoint]:
        if self._pods(msg.name):
            raise EtlError("etl is already running on this cluster; stop it first", etl_name=msg.name)
        env = dict(extra_env)
        env[TOKEN_ENV] = self.access.begin(msg.name).token
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
        started: list[tuple[Target, LocalPod]] = []
        try:
            with self.state.pods_lock(shared=True):  # gateways stay up until our pods are recorded
                for target in self.targets():
                    started.append((target, self._start_one(msg, template, target, env, volume_dirs, meta)))
            if wait:
                wait_ready(msg, started, lambda tid: self._pod_spec(msg.name, tid))
        except BaseException:
            for _target, pod in started:
                stop_pod(pod, grace=2)
            self._clear_pod_dirs(msg.name)
            self.access.end(msg.name)
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
            target_url=self.target_url(target.id, msg.name),
            extra_env=env,
            labels=meta[0],
            annotations=meta[1],
            io_server_command=None,
        )
        pod_dir = self.state.pod_dir(msg.name, target.id)
        write_text_atomic(pod_dir / "pod.yaml", yaml.safe_dump(_redact(prepared.pod), sort_keys=False))
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
                    image_command=local_image_command,
                    extra_base_env={"POD_IP": ip, FILE_SOCKET_ENV: str(pod_dir / FILE_SOCKET_NAME)},
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
        self.state.stopping_file(name).unlink(missing_ok=True)

    def aborted_cause(self, name: str) -> str | None:
        event = read_event(self.state.aborted_file(name))
        return event.cause if event else None

    def _pod_spec(self, name: str, tid: str) -> dict[str, Any]:
        spec: dict[str, Any] = yaml.safe_load((self.state.pod_dir(name, tid) / "pod.yaml").read_text())
        return spec

    def stop_pods(self, name: str, *, cause: str | None = None, grace: float = STOP_GRACE) -> bool:
        """Stop every pod of ``name`` together (one ``grace`` for all); the stop stays recorded.

        The record (``cause``, kept until the next start) lets running jobs' watches name the stop
        and who made it, stamped before any pod is signalled, rather than the pod exits it causes.
        """
        with self.lifecycle():
            pods = self._pods(name)
            secrets = self.access.secrets(name)  # those of the pods stopped here, not of a later start
            if pods:
                write_event(self.state.stopping_file(name), cause or f"etl {name} stopped")
            stop_pods(list(pods.values()), grace=grace)
            for tid in pods:
                (self.state.pod_dir(name, tid) / "pod.json").unlink(missing_ok=True)
            if secrets is not None:
                self.access.end(name, only=secrets)
            self._stop_idle_gateways()
        return bool(pods)

    def _stop_idle_gateways(self) -> None:
        """Stop the target gateways once no pod runs, so no process outlives the last ETL."""
        with self.state.pods_lock(shared=False):
            if not self.state.any_pods():
                self.gateways.stop(t.id for t in self.targets())

    def endpoints(self, name: str) -> list[PodEndpoint]:
        out = []
        token = self.access.token(name)
        for tid, pod in self._pods(name).items():
            data = json.loads((self.state.pod_dir(name, tid) / "pod.json").read_text())
            io_command = tuple(data["io_command"]) if data.get("io_command") else None
            file_socket = str(self.state.pod_dir(name, tid) / FILE_SOCKET_NAME)
            out.append(PodEndpoint(tid, pod.name, pod.url, io_command, token, file_socket))
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
        return pod_metrics(self._require(name))

    def logs(self, name: str, target_id: str | None = None) -> list[PodLogs]:
        """Logs of the running pods, or of the last ones of a stopped or aborted ETL (until its next start)."""
        return pod_logs(self.state.etl_dir(name), name, self._pods(name), target_id)

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
        """Return what changed first since ``baseline`` for ETL ``name`` (None when nothing did)."""
        event = self.membership_event(name, baseline)
        return event.cause if event else None

    def membership_event(self, name: str, baseline: Mapping[str, Any]) -> Event | None:
        """Return the earliest event since ``baseline``: a recorded abort or stop, a target change,
        a pod exit. Effects (pods) are read before causes, so a cause that led to them is seen too.
        """
        pods = self._pods(name)
        events = pod_exit_events(pods)
        cluster = self._ensure_cluster()
        now = {"version": cluster["version"], "targets": sorted(cluster["targets"])}
        events += membership_events(baseline, now, float(cluster.get("changed_at") or time.time()))
        for path in (self.state.aborted_file(name), self.state.stopping_file(name)):
            if (recorded := read_event(path)) is not None:
                events.append(recorded)
        if not pods and not events:
            events.append(Event(time.time(), f"etl {name} stopped"))
        return earliest(events)

    def watch_membership(self, name: str, on_change: Callable[[str], None]) -> MembershipWatch:
        baseline = self._snapshot(name)
        return PollingWatch(name, lambda: self.membership_event(name, baseline), on_change)

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
        self.forget_jobs(name)

    def shutdown(self) -> None:
        """Stop every pod and every gateway of this home (tests and ``cluster destroy``)."""
        for name in self.state.etl_names():
            self.stop_pods(name)
        self.gateways.stop(t.id for t in self.targets())


def _redact(pod: dict[str, Any]) -> dict[str, Any]:
    """Return the pod spec without the code/deps env values (they live in the volumes)."""
    data = json.loads(json.dumps(pod))
    spec = data.get("spec", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for e in c.get("env") or []:
            if e.get("name") in ("AISTORE_CODE", "AISTORE_DEPS"):
                e["value"] = "<redacted: see volumes>"
            elif e.get("name") == TOKEN_ENV:
                e["value"] = "<redacted: see secrets.json>"
    return data


def _maybe_lock(path: Path | None) -> contextlib.AbstractContextManager[None]:
    """Serialise pods that share a dependency directory while their init containers run."""
    return locked(path.with_name(path.name + ".lock")) if path else contextlib.nullcontext()


def _origin(url: str) -> str:
    """Return ``scheme://host:port`` of ``url``."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
