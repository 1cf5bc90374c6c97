"""The ``kubernetes`` backend: targets are Ready nodes, ETL pods are Pods + Services in one namespace.

Pods come from the model's pod specs (:func:`~airflow_ais_etl.etl.podspec.prepare_pod`) plus a native
gateway sidecar that serves ``AIS_TARGET_URL`` (hpull/hrev/url). The ETL metadata lives in the
ConfigMap ``ais-etl-md``; running ETLs are found by pod labels, so any worker can stop or use an
ETL another worker started. Every API call goes through :mod:`airflow_ais_etl.cluster.k8s_pods`.

Code and dependencies of init-code ETLs travel as env (``AISTORE_CODE``/``AISTORE_DEPS``), as the
model's ``prepare_pod`` does: one object to create and no volume kinds beyond ``emptyDir``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes.utils import parse_quantity

from airflow_ais_etl.cluster.base import (
    Backend,
    BucketRef,
    HealthStatus,
    MembershipWatch,
    PodEndpoint,
    PodLogs,
    PodMetrics,
)
from airflow_ais_etl.cluster.gateway import CALLBACK_PREFIX, SECRET_ENV, new_secret, register_bucket
from airflow_ais_etl.cluster.k8s_pods import KubeApiError, KubeClient, KubeConflict, KubeGone, WatchStream
from airflow_ais_etl.cluster.localstate import default_home
from airflow_ais_etl.etl.duration import format_duration, probing_interval
from airflow_ais_etl.etl.errors import EtlError, EtlNotFoundError, PodStartError, ValidationError
from airflow_ais_etl.etl.md import EtlMD
from airflow_ais_etl.etl.msg import ARG_FQN, DEFAULT_TIMEOUT, InitCodeMsg, InitMsg, InitSpecMsg
from airflow_ais_etl.etl.podspec import (
    POD_LABEL_TARGET,
    PreparedPod,
    Target,
    code_env,
    code_pod_spec,
    label_value,
    parse_pod_spec,
    prepare_pod,
)
from airflow_ais_etl.etl.runtimes import RUNTIMES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "ADDRESS_MODES",
    "FAIL_FAST_REASONS",
    "GATEWAY_CONTAINER",
    "MD_CONFIGMAP",
    "KubernetesBackend",
    "backend_kwargs_from_extras",
    "start_problem",
]

log = logging.getLogger(__name__)

MD_CONFIGMAP = "ais-etl-md"
MANAGED_BY = "airflow-ais-etl"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "app.kubernetes.io/instance"
ANNOTATION_IO_COMMAND = "airflow-ais-etl/io-command"
GATEWAY_CONTAINER = "ais-etl-gateway"
POD_IP_ENV = "AIS_ETL_POD_IP"
HOSTNAME_LABEL = "kubernetes.io/hostname"
ADDRESS_MODES = ("pod-ip", "service")
FAIL_FAST_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)
_CM_RETRIES = 20
_WATCH_SECONDS = 30
_METRICS_TRIES = 10


# --------------------------------------------------------------------------------------------------
# pure helpers: pod status


def _conditions(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in (pod.get("status") or {}).get("conditions") or []}


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Tell whether the pod's ``Ready`` condition is ``True``."""
    return str(_conditions(pod).get("Ready", {}).get("status")) == "True"


def _sidecar_names(pod: Mapping[str, Any]) -> set[str]:
    spec = pod.get("spec") or {}
    return {
        str(c.get("name")) for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
    }


def start_problem(pod: Mapping[str, Any], *, elapsed: float, scheduling_timeout: float) -> str | None:
    """Return why a starting pod can never become Ready (fail fast), or None while it still may.

    :param pod: the pod as the API returns it
    :param elapsed: seconds since the pod was created
    :param scheduling_timeout: how long ``Unschedulable`` is tolerated
    """
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "")
    if phase in ("Failed", "Succeeded"):
        message = status.get("message") or status.get("reason") or ""
        return f'pod ran to completion (phase: {phase}), state message: "{message}"'
    sidecars = _sidecar_names(pod)
    inits = [(c, True) for c in status.get("initContainerStatuses") or []]
    mains = [(c, False) for c in status.get("containerStatuses") or []]
    for cs, is_init in inits + mains:
        name = str(cs.get("name"))
        kind = "init container" if is_init and name not in sidecars else "container"
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in FAIL_FAST_REASONS:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return f"{kind} {name!r} is waiting with reason {reason}{detail}"
        terminated = state.get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
        if not terminated:
            continue
        code = int(terminated.get("exitCode") or 0)
        if is_init and name not in sidecars:
            if code != 0:
                return f"{kind} {name!r} failed with exit code {code} ({terminated.get('reason') or 'Error'})"
            continue
        return f"{kind} {name!r} exited with code {code} ({terminated.get('reason') or 'Error'}) before the pod became ready"
    scheduled = _conditions(pod).get("PodScheduled", {})
    if str(scheduled.get("status")) == "False" and scheduled.get("reason") == "Unschedulable":
        if elapsed > scheduling_timeout:
            return (
                f"pod is Unschedulable after {format_duration(elapsed)} (scheduling timeout "
                f"{format_duration(scheduling_timeout)}): {scheduled.get('message') or 'no node fits'}"
            )
    return None


def describe_pod(pod: Mapping[str, Any]) -> str:
    """Render phase, conditions and each container's state in one line (for errors and health)."""
    status = pod.get("status") or {}
    conds = []
    for c in status.get("conditions") or []:
        text = f'{{type: "{c.get("type")}", status: "{c.get("status")}"'
        if c.get("reason"):
            text += f', reason: "{c["reason"]}"'
        if c.get("message"):
            text += f', msg: "{c["message"]}"'
        conds.append(text + "}")
    states = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        kind = next(iter(state), "unknown")
        inner = state.get(kind) or {}
        extra = inner.get("reason") or ""
        if kind == "terminated":
            extra = f"exit code {inner.get('exitCode')}" + (f", {extra}" if extra else "")
        restarts = int(cs.get("restartCount") or 0)
        text = f"{cs.get('name')}: {kind}" + (f" ({extra})" if extra else "")
        states.append(text + (f", {restarts} restart(s)" if restarts else ""))
    return (
        f'phase "{status.get("phase") or ""}", conditions [{", ".join(conds)}], '
        f"containers [{'; '.join(states) or 'none started'}]"
    )


def _exit_code(pod: Mapping[str, Any], baseline_restarts: Mapping[str, int]) -> int | None:
    """Return the exit code of a serving container that exited since the baseline, else None."""
    status = pod.get("status") or {}
    sidecars = _sidecar_names(pod)
    statuses = list(status.get("containerStatuses") or []) + [
        cs for cs in status.get("initContainerStatuses") or [] if cs.get("name") in sidecars
    ]
    for cs in statuses:
        name = str(cs.get("name"))
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated:
            return int(terminated.get("exitCode") or 0)
        if int(cs.get("restartCount") or 0) > baseline_restarts.get(name, 0):
            last = (cs.get("lastState") or {}).get("terminated") or {}
            return int(last.get("exitCode") or 0)
    return None


def _restarts(pod: Mapping[str, Any]) -> dict[str, int]:
    status = pod.get("status") or {}
    return {
        str(cs.get("name")): int(cs.get("restartCount") or 0)
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    }


def node_ready(node: Mapping[str, Any]) -> bool:
    """Tell whether a node is Ready and schedulable."""
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def target_id(node_name: str) -> str:
    """Return the target id of a node: its name made a label value (lower case, ``[a-z0-9-]``)."""
    return label_value(re.sub(r"[^a-z0-9-]", "-", node_name.lower()).strip("-") or node_name)


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _label(obj: Mapping[str, Any], key: str) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(key, ""))


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _main_port(pod: Mapping[str, Any]) -> int:
    container = (pod.get("spec") or {}).get("containers", [{}])[0]
    ports = container.get("ports") or [{}]
    return int(ports[0].get("containerPort") or 0)


# --------------------------------------------------------------------------------------------------
# connection extras


def _as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"connection extra {key!r} must be true or false, got {value!r}")


def _as_float(value: Any, key: str) -> float:
    from airflow_ais_etl.etl.duration import parse_duration

    try:
        return float(value) if isinstance(value, (int, float)) else float(parse_duration(str(value)))
    except (ValueError, EtlError) as exc:
        raise ValueError(
            f"connection extra {key!r} must be seconds or a duration like 90s, got {value!r}"
        ) from exc


def backend_kwargs_from_extras(extras: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the :class:`KubernetesBackend` keyword arguments an ``ais_etl`` connection's extras set.

    Reads ``address`` (pod-ip|service), ``gateway_secret_name``, ``scheduling_timeout``,
    ``buckets_file``, ``shared_paths`` (list or comma-separated), ``mount_shared_paths``,
    ``gateway_image``, ``stop_timeout``; the common ones (conn id, namespace, selector) come from
    the settings.
    """
    extras = extras or {}
    out: dict[str, Any] = {}
    for key in ("address", "gateway_secret_name", "buckets_file", "gateway_image"):
        if extras.get(key) not in (None, ""):
            out[key] = str(extras[key]).strip()
    for key in ("scheduling_timeout", "stop_timeout"):
        if extras.get(key) not in (None, ""):
            out[key] = _as_float(extras[key], key)
    if extras.get("mount_shared_paths") not in (None, ""):
        out["mount_shared_paths"] = _as_bool(extras["mount_shared_paths"], "mount_shared_paths")
    paths = extras.get("shared_paths")
    if paths not in (None, "", []):
        items = paths.split(",") if isinstance(paths, str) else list(paths)
        out["shared_paths"] = tuple(str(p).strip() for p in items if str(p).strip())
    return out


# --------------------------------------------------------------------------------------------------
# the membership watch


class _Watch(MembershipWatch):
    """Watch the target nodes and the ETL's pods; any event triggers a diagnosis against the baseline."""

    def __init__(self, backend: KubernetesBackend, name: str, on_change: Callable[[str], None]) -> None:
        self._backend = backend
        self._name = name
        self._on_change = on_change
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._streams: set[WatchStream] = set()
        self._fired = False
        self._baseline = backend.baseline(name)
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), name=f"etl-aborter-{name}-{kind}", daemon=True)
            for kind in ("nodes", "pods")
        ]
        for t in self._threads:
            t.start()
        self._check()  # anything that changed between the baseline and the first event

    def _open(self, kind: str, rv: str) -> WatchStream:
        kube = self._backend.kube
        if kind == "nodes":
            return kube.watch_nodes(self._backend.node_label_selector, rv, _WATCH_SECONDS)
        return kube.watch_pods(self._backend.etl_selector(self._name), rv, _WATCH_SECONDS)

    def _run(self, kind: str) -> None:
        rv = str(self._baseline[f"{kind}_rv"])
        while not self._stop.is_set():
            stream = self._open(kind, rv)
            with self._lock:
                self._streams.add(stream)
            if self._stop.is_set():
                stream.close()
            try:
                for etype, obj in stream:
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype != "BOOKMARK":
                        self._check()
            except KubeGone:
                rv = self._backend.relist_version(self._name, kind)
                self._check()
            except Exception as exc:  # API hiccups must not kill the watch; re-list and go on
                if self._stop.is_set():
                    return
                log.debug("etl %s: %s watch failed (%s); retrying", self._name, kind, exc)
                if self._stop.wait(1.0):
                    return
                with contextlib.suppress(Exception):
                    rv = self._backend.relist_version(self._name, kind)
                self._check()
            finally:
                with self._lock:
                    self._streams.discard(stream)

    def _check(self) -> None:
        with self._lock:
            if self._fired or self._stop.is_set():
                return
        try:
            cause = self._backend.membership_cause(self._name, self._baseline)
        except Exception as exc:  # diagnosis needs the API; a transient failure is not a cause
            log.debug("etl %s: membership check failed: %s", self._name, exc)
            return
        if not cause:
            return
        with self._lock:
            if self._fired:
                return
            self._fired = True
        if not cause.startswith("etl "):
            with contextlib.suppress(Exception):
                self._backend.record_abort(self._name, cause)
        log.warning("etl %s: %s, aborting...", self._name, cause)
        try:
            self._on_change(cause)
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for s in streams:
            s.close()


# --------------------------------------------------------------------------------------------------
# the backend


class KubernetesBackend(Backend):
    """ETL pods on the Ready nodes of a Kubernetes cluster, reached through a ``kubernetes`` connection.

    :param kubernetes_conn_id: cncf-kubernetes connection (default ``kubernetes_default``)
    :param namespace: namespace of every ETL object (default: the connection's, else ``default``)
    :param node_selector: labels a node needs to be a target
    :param address: ``pod-ip`` (default) or ``service`` (``<svc>.<ns>.svc``; needs cluster DNS)
    :param gateway_secret_name: a Secret whose keys become the gateway sidecar's env (object-store
        credentials)
    :param scheduling_timeout: seconds a pod may stay ``Unschedulable`` before init fails
    :param buckets_file: the gateway's bucket map; it must be visible at this path inside the pods
    :param shared_paths: host directories visible at the same path inside the pods (local buckets
        for hpull/hrev, ``fqn``, the bucket map)
    :param mount_shared_paths: mount ``shared_paths`` as hostPath volumes (False when something else
        makes them visible)
    :param gateway_image: image of the gateway sidecar (default: the runtime image)
    :param gateway_port: port of the gateway sidecar (moved up by one if the transformer uses it)
    :param stop_grace: grace period of pod deletion, seconds
    :param stop_timeout: how long to wait for graceful deletion before deleting by force
    :param poll_interval: readiness poll interval (default: the reference's ``probing_interval``)
    """

    kind = "kubernetes"

    def __init__(
        self,
        kubernetes_conn_id: str | None = None,
        namespace: str | None = None,
        node_selector: Mapping[str, str] | None = None,
        *,
        address: str = "pod-ip",
        gateway_secret_name: str | None = None,
        scheduling_timeout: float = 60.0,
        buckets_file: str | None = None,
        shared_paths: Iterable[str] = (),
        mount_shared_paths: bool = True,
        gateway_image: str | None = None,
        gateway_port: int = 8081,
        stop_grace: int = 10,
        stop_timeout: float = 30.0,
        poll_interval: float | None = None,
    ) -> None:
        if address not in ADDRESS_MODES:
            raise ValueError(f"address must be one of {', '.join(ADDRESS_MODES)}, got {address!r}")
        self.kube = KubeClient(kubernetes_conn_id, namespace)
        self.namespace = self.kube.namespace
        self.node_selector = dict(node_selector or {})
        self.node_label_selector = _selector(self.node_selector)
        self.address = address
        self.gateway_secret_name = gateway_secret_name
        self.scheduling_timeout = float(scheduling_timeout)
        self.shared_paths = tuple(str(Path(p).expanduser().resolve()) for p in shared_paths)
        self.mount_shared_paths = mount_shared_paths
        if buckets_file:
            self.buckets_file = str(Path(buckets_file).expanduser().resolve())
        elif self.shared_paths:
            self.buckets_file = str(
                Path(self.shared_paths[0]) / ".airflow-ais-etl" / f"buckets-{self.namespace}.json"
            )
        else:
            self.buckets_file = str(default_home() / "kubernetes" / self.namespace / "buckets.json")
        self.gateway_image = gateway_image
        self.gateway_port = gateway_port
        self.stop_grace = stop_grace
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval

    # ---------------------------------------------------------------- targets
    def targets(self) -> list[Target]:
        nodes, _ = self.kube.list_nodes(self.node_label_selector)
        out = []
        for node in sorted(nodes, key=_name):
            if node_ready(node):
                name = _name(node)
                out.append(Target(target_id(name), _label(node, HOSTNAME_LABEL) or name))
        return out

    def etl_selector(self, name: str) -> str:
        return _selector({LABEL_MANAGED_BY: MANAGED_BY, LABEL_INSTANCE: label_value(name)})

    # ---------------------------------------------------------------- metadata (one ConfigMap)
    def _read_cm(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        cm = self.kube.read_config_map(MD_CONFIGMAP)
        return (dict((cm or {}).get("data") or {}), cm)

    def _update_cm(self, change: Callable[[dict[str, str]], object]) -> dict[str, str]:
        """Apply ``change`` to the ConfigMap data with optimistic concurrency (retry on 409)."""
        for attempt in range(_CM_RETRIES):
            data, cm = self._read_cm()
            change(data)
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": MD_CONFIGMAP,
                    "namespace": self.namespace,
                    "labels": {LABEL_MANAGED_BY: MANAGED_BY},
                },
                "data": data,
            }
            try:
                if cm is None:
                    self.kube.create_config_map(body)
                else:
                    body["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
                    self.kube.replace_config_map(body)
            except KubeConflict:
                time.sleep(min(0.01 * (attempt + 1), 0.2))
                continue
            return data
        raise EtlError(
            f"configmap {self.namespace}/{MD_CONFIGMAP} kept changing: gave up after {_CM_RETRIES} tries"
        )

    def read_md(self) -> EtlMD:
        text = self._read_cm()[0].get("md", "")
        return EtlMD.from_json(text) if text else EtlMD()

    def update_md(self, change: Callable[[EtlMD], object]) -> EtlMD:
        result: list[EtlMD] = []

        def apply(data: dict[str, str]) -> None:
            md = EtlMD.from_json(data["md"]) if data.get("md") else EtlMD()
            change(md)
            data["md"] = md.to_json()
            result[:] = [md]

        self._update_cm(apply)
        return result[0]

    def _json_key(self, data: Mapping[str, str], key: str) -> dict[str, Any]:
        try:
            value = json.loads(data.get(key) or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def record_abort(self, name: str, cause: str | None) -> None:
        """Remember (or with None, forget) why ``name`` was aborted; ``info`` reports it."""

        def change(data: dict[str, str]) -> None:
            aborted = self._json_key(data, "aborted")
            if cause is None:
                aborted.pop(name, None)
            else:
                aborted[name] = cause
            data["aborted"] = json.dumps(aborted, sort_keys=True)

        if cause is None and name not in self._json_key(self._read_cm()[0], "aborted"):
            return
        self._update_cm(change)

    def aborted_cause(self, name: str) -> str | None:
        cause = self._json_key(self._read_cm()[0], "aborted").get(name)
        return str(cause) if cause else None

    def abort(self, name: str, cause: str) -> None:
        """Record why ``name`` is aborted (running jobs see it) and stop its pods everywhere."""
        self.record_abort(name, cause)
        log.warning("etl %s: %s, aborting...", name, cause)
        self.stop_pods(name)

    def add_stats(self, name: str, delta: Mapping[str, int]) -> None:
        def change(data: dict[str, str]) -> None:
            stats = self._json_key(data, "stats")
            mine = stats.setdefault(name, {})
            for k, v in delta.items():
                mine[k] = int(mine.get(k, 0)) + int(v)
            data["stats"] = json.dumps(stats, sort_keys=True)

        self._update_cm(change)

    def stats(self, name: str) -> dict[str, int]:
        mine = self._json_key(self._read_cm()[0], "stats").get(name) or {}
        return {str(k): int(v) for k, v in mine.items()}

    def bucket_ref(self, url: str) -> BucketRef:
        return register_bucket(self.buckets_file, url)

    # ---------------------------------------------------------------- pods
    def _gateway_container(self, port: int, secret: str, image: str) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": GATEWAY_CONTAINER,
            "image": image,
            "restartPolicy": "Always",
            "command": ["python", "-m", "airflow_ais_etl.cluster.gateway"],
            "args": ["--host", f"$({POD_IP_ENV})", "--port", str(port), "--buckets", self.buckets_file],
            "env": [_pod_ip_env(), {"name": SECRET_ENV, "value": secret}],
            "ports": [{"name": "ais-gateway", "containerPort": port, "protocol": "TCP"}],
        }
        if self.gateway_secret_name:
            container["envFrom"] = [{"secretRef": {"name": self.gateway_secret_name}}]
        return container

    def _prepare(
        self, msg: InitMsg, template: Mapping[str, Any], target: Target, env: Mapping[str, str], image: str
    ) -> PreparedPod:
        port = _main_port(template) or 8080
        gw_port = self.gateway_port + 1 if port == self.gateway_port else self.gateway_port
        secret = new_secret()
        target_url = f"http://$({POD_IP_ENV}):{gw_port}{CALLBACK_PREFIX}{secret}"
        prepared = prepare_pod(
            template, msg, target, target_url=target_url, extra_env=env, namespace=self.namespace
        )
        pod = prepared.pod
        spec = pod["spec"]
        for container in spec["containers"]:
            env_list = [e for e in container.get("env") or [] if e.get("name") != POD_IP_ENV]
            front = [_pod_ip_env()]
            if not any(e.get("name") == "POD_IP" for e in env_list):
                front.append(_pod_ip_env("POD_IP"))  # our runtime (and the io server) bind it
            container["env"] = front + env_list
        spec["initContainers"] = [self._gateway_container(gw_port, secret, image)] + list(
            spec.get("initContainers") or []
        )
        if self.shared_paths and self.mount_shared_paths:
            _mount_host_paths(spec, self.shared_paths)
        if prepared.io_command is not None:
            annotations = dict(pod["metadata"].get("annotations") or {})
            annotations[ANNOTATION_IO_COMMAND] = json.dumps(prepared.io_command)
            pod["metadata"]["annotations"] = annotations
        return prepared

    def start_pods(self, msg: InitMsg, *, extra_env: Mapping[str, str] | None = None) -> list[PodEndpoint]:
        if self.endpoints(msg.name):
            raise EtlError("etl is already running on this cluster; stop it first", etl_name=msg.name)
        env = dict(extra_env or {})
        default_image = RUNTIMES["python3.11v2"].image
        if isinstance(msg, InitCodeMsg):
            template = code_pod_spec(msg)
            env.update(code_env(msg))
            runtime = RUNTIMES.get(msg.runtime)
            default_image = runtime.image if runtime else default_image
        elif isinstance(msg, InitSpecMsg):
            template = parse_pod_spec(msg.spec, etl_name=msg.name)
        else:
            raise ValidationError(f"unsupported init message kind {type(msg).__name__}", etl_name=msg.name)
        if msg.arg_type == ARG_FQN and not self.shared_paths:
            raise ValidationError(
                "arg type 'fqn' sends the pod a local file path, but no path of this machine is visible "
                "inside the Kubernetes pods: set the connection extra shared_paths (directories mounted "
                "at the same path in every ETL pod) or use the default arg type",
                etl_name=msg.name,
            )
        targets = self.targets()
        if not targets:
            raise PodStartError(
                f"no Ready node matches the node selector {self.node_label_selector or '(none)'}: "
                "label the nodes that should run ETL pods or change the connection's node_selector",
                etl_name=msg.name,
            )
        image = self.gateway_image or default_image
        prepared = [(t, self._prepare(msg, template, t, env, image)) for t in targets]
        self._force_remove(msg.name)  # leftovers of a crashed run (the reference's pre-clean)
        self.record_abort(msg.name, None)
        try:
            for _target, prep in prepared:
                self.kube.create_service(prep.service)
                self.kube.create_pod(prep.pod)
            self._wait_ready(msg, prepared)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self._force_remove(msg.name)
            if isinstance(exc, KubeApiError):
                raise PodStartError(str(exc), etl_name=msg.name) from exc
            raise
        return self.endpoints(msg.name)

    def _wait_ready(self, msg: InitMsg, prepared: list[tuple[Target, PreparedPod]]) -> None:
        timeout = msg.timeout or DEFAULT_TIMEOUT
        interval = self.poll_interval or probing_interval(timeout)
        start = time.monotonic()
        pending = {t.id: (t, p) for t, p in prepared}
        while pending:
            time.sleep(interval)
            elapsed = time.monotonic() - start
            for tid, (target, prep) in list(pending.items()):
                pod = self.kube.read_pod(prep.pod_name)
                if pod is None:
                    raise PodStartError(
                        f"pod {self.namespace}/{prep.pod_name} disappeared while starting (deleted or evicted)",
                        etl_name=msg.name,
                        target=tid,
                        pod_name=prep.pod_name,
                    )
                problem = start_problem(pod, elapsed=elapsed, scheduling_timeout=self.scheduling_timeout)
                if problem:
                    raise self._start_error(msg, target, pod, problem)
                if pod_ready(pod):
                    del pending[tid]
            if pending and time.monotonic() - start > timeout:
                target, prep = next(iter(pending.values()))
                pod = self.kube.read_pod(prep.pod_name) or {}
                reason = f"pod did not become ready within the startup timeout of {format_duration(timeout)}"
                raise self._start_error(msg, target, pod, reason)

    def _start_error(
        self, msg: InitMsg, target: Target, pod: Mapping[str, Any], problem: str
    ) -> PodStartError:
        name = _name(pod)
        events = []
        with contextlib.suppress(Exception):
            for e in self.kube.pod_events(name)[-5:]:
                events.append(f"{e.get('type')} {e.get('reason')}: {e.get('message')}")
        tail, code = self._failed_log_tail(pod)
        text = (
            f"{problem}; pod {self.namespace}/{name}: {describe_pod(pod)}; "
            f"last events: [{' | '.join(events) or 'none'}]"
        )
        if tail:
            text += f"; last log lines:\n{tail}"
        return PodStartError(
            text,
            exit_code=code,
            log_tail=tail,
            etl_name=msg.name,
            target=target.id,
            pod_name=name,
            svc_name=name,
        )

    def _failed_log_tail(self, pod: Mapping[str, Any]) -> tuple[str, int | None]:
        """Return the log tail and exit code of the first container that terminated, if any."""
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if not term or (
                int(term.get("exitCode") or 0) == 0 and cs.get("name") not in _sidecar_names(pod)
            ):
                continue
            previous = not state.get("terminated")
            text = ""
            for prev in (previous, False) if previous else (False,):
                with contextlib.suppress(Exception):
                    text = self.kube.pod_log(_name(pod), str(cs.get("name")), tail_lines=20, previous=prev)
                if text.strip():
                    break
            return text.rstrip("\n"), int(term.get("exitCode") or 0)
        return "", None

    def _force_remove(self, name: str) -> None:
        """Delete every Service and Pod of ``name`` immediately and wait until they are gone."""
        selector = self.etl_selector(name)
        for svc in self.kube.list_services(selector):
            self.kube.delete_service(_name(svc))
        pods, _ = self.kube.list_pods(selector)
        for pod in pods:
            self.kube.delete_pod(_name(pod), 0)
        if pods:
            self._wait_gone(name, 45.0)

    def _wait_gone(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        selector = self.etl_selector(name)
        while True:
            pods, _ = self.kube.list_pods(selector)
            if not pods:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def stop_pods(self, name: str) -> bool:
        selector = self.etl_selector(name)
        services = self.kube.list_services(selector)
        pods, _ = self.kube.list_pods(selector)
        if not pods and not services:
            return False
        for svc in services:
            self.kube.delete_service(_name(svc))
        for pod in pods:
            if not _is_deleting(pod):
                self.kube.delete_pod(_name(pod), self.stop_grace)
        if not self._wait_gone(name, self.stop_timeout):
            remaining, _ = self.kube.list_pods(selector)
            log.warning(
                "etl %s: %d pod(s) still terminating after %.0fs: deleting by force",
                name,
                len(remaining),
                self.stop_timeout,
            )
            for pod in remaining:
                self.kube.delete_pod(_name(pod), 0)
            if not self._wait_gone(name, 45.0):
                raise EtlError(
                    f"pods of etl {name} in namespace {self.namespace} did not go away", etl_name=name
                )
        return bool(pods)

    def _pods(self, name: str) -> list[dict[str, Any]]:
        pods, _ = self.kube.list_pods(self.etl_selector(name))
        return sorted(pods, key=lambda p: _label(p, POD_LABEL_TARGET))

    def endpoints(self, name: str) -> list[PodEndpoint]:
        out = []
        for pod in self._pods(name):
            ip = (pod.get("status") or {}).get("podIP")
            if _is_deleting(pod) or not ip:
                continue
            pname, port = _name(pod), _main_port(pod)
            host = ip if self.address == "pod-ip" else f"{pname}.{self.namespace}.svc"
            raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_IO_COMMAND)
            io_command = tuple(json.loads(raw)) if raw else None
            out.append(PodEndpoint(_label(pod, POD_LABEL_TARGET), pname, f"http://{host}:{port}", io_command))
        return out

    def _require(self, name: str) -> list[dict[str, Any]]:
        pods = [p for p in self._pods(name) if not _is_deleting(p)]
        if not pods:
            raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
        return pods

    # ---------------------------------------------------------------- observability
    def health(self, name: str) -> list[HealthStatus]:
        return [self._health_of(pod) for pod in self._require(name)]

    def _health_of(self, pod: Mapping[str, Any]) -> HealthStatus:
        tid, pname = _label(pod, POD_LABEL_TARGET), _name(pod)
        status = pod.get("status") or {}
        phase = str(status.get("phase") or "Unknown")
        restarts = {k: v for k, v in _restarts(pod).items() if v}
        note = ", ".join(f"container {k} restarted {v} time(s)" for k, v in sorted(restarts.items()))
        main = (status.get("containerStatuses") or [{}])[0]
        state = main.get("state") or {}
        if phase != "Running":
            return HealthStatus(tid, pname, phase, describe_pod(pod))
        if state.get("terminated") or state.get("waiting"):
            inner = state.get("terminated") or state.get("waiting") or {}
            code = inner.get("exitCode")
            detail = f"container {main.get('name')} exited with code {code}" if code is not None else ""
            return HealthStatus(tid, pname, "Failed", detail or str(inner.get("reason") or describe_pod(pod)))
        if not pod_ready(pod):
            return HealthStatus(tid, pname, "NotReady", describe_pod(pod))
        url = _readiness_url(pod)
        if url:
            ok, detail = _probe(url)
            if not ok:
                return HealthStatus(tid, pname, "NotReady", detail)
        return HealthStatus(tid, pname, "Running", note)

    def metrics(self, name: str) -> list[PodMetrics]:
        pods = self._require(name)
        out = []
        checked_api = False
        for pod in pods:
            pname = _name(pod)
            data = None
            for attempt in range(_METRICS_TRIES):
                data = self.kube.pod_metrics(pname)
                if data is not None:
                    break
                if not checked_api:
                    checked_api = True
                    if not self.kube.metrics_api_available():
                        raise EtlError(
                            "the metrics API (metrics.k8s.io/v1beta1) is not served by this cluster: "
                            "install metrics-server to see ETL pod CPU and memory",
                            etl_name=name,
                        )
                time.sleep(0.2 * (attempt + 1))
            if data is None:
                raise EtlError(
                    f"metrics for pod {self.namespace}/{pname} do not exist yet (metrics-server samples "
                    "pods periodically); retry in a minute",
                    etl_name=name,
                    pod_name=pname,
                )
            cpu, mem = 0.0, 0
            for c in data.get("containers") or []:
                usage = c.get("usage") or {}
                cpu += float(parse_quantity(usage.get("cpu", "0")))
                mem += int(parse_quantity(usage.get("memory", "0")))
            out.append(PodMetrics(_label(pod, POD_LABEL_TARGET), pname, round(cpu, 6), mem))
        return out

    def logs(self, name: str, target_id: str | None = None) -> list[PodLogs]:
        pods = self._require(name)
        tids = [_label(p, POD_LABEL_TARGET) for p in pods]
        if target_id is not None and target_id not in tids:
            raise ValidationError(f"unknown target {target_id!r} for etl {name} (targets: {', '.join(tids)})")
        out = []
        for tid, pod in zip(tids, pods):
            if target_id not in (None, tid):
                continue
            container = str((pod.get("spec") or {}).get("containers", [{}])[0].get("name"))
            try:
                text = self.kube.pod_log(_name(pod), container)
            except KubeApiError as exc:
                text = f"<logs unavailable: {exc}>"
            out.append(PodLogs(tid, _name(pod), text))
        return out

    # ---------------------------------------------------------------- membership
    def baseline(self, name: str) -> dict[str, Any]:
        """Return the state a membership watch compares against (targets, pods, versions)."""
        nodes, nodes_rv = self.kube.list_nodes(self.node_label_selector)
        pods, pods_rv = self.kube.list_pods(self.etl_selector(name))
        targets = sorted(target_id(_name(n)) for n in nodes if node_ready(n))
        pod_state = {
            _label(p, POD_LABEL_TARGET): {
                "uid": (p.get("metadata") or {}).get("uid"),
                "restarts": _restarts(p),
            }
            for p in pods
            if not _is_deleting(p)
        }
        return {"targets": targets, "pods": pod_state, "nodes_rv": nodes_rv, "pods_rv": pods_rv}

    def relist_version(self, name: str, kind: str) -> str:
        if kind == "nodes":
            return self.kube.list_nodes(self.node_label_selector)[1]
        return self.kube.list_pods(self.etl_selector(name))[1]

    def membership_cause(self, name: str, baseline: Mapping[str, Any]) -> str | None:
        """Return what changed since ``baseline`` for ETL ``name`` (None when nothing did)."""
        aborted = self.aborted_cause(name)
        if aborted:
            return aborted
        now = {t.id for t in self.targets()}
        before = set(baseline["targets"])
        changes = [f"target {t} left" for t in sorted(before - now)]
        changes += [f"target {t} joined" for t in sorted(now - before)]
        if changes:
            return ", ".join(changes)
        if not self.kube.list_services(self.etl_selector(name)):
            return f"etl {name} stopped"
        pods = {_label(p, POD_LABEL_TARGET): p for p in self._pods(name)}
        if not any(not _is_deleting(p) for p in pods.values()):
            return f"etl {name} stopped"
        for tid, seen in sorted(baseline["pods"].items()):
            pod = pods.get(tid)
            if pod is None or _is_deleting(pod):
                return f"pod of {tid} was deleted"
            if (pod.get("metadata") or {}).get("uid") != seen["uid"]:
                return f"pod of {tid} was replaced"
            code = _exit_code(pod, seen["restarts"])
            if code is not None:
                return f"pod of {tid} exited with code {code}"
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Failed", "Succeeded"):
                return f"pod of {tid} ran to completion (phase {phase})"
        return None

    def watch_membership(self, name: str, on_change: Callable[[str], None]) -> MembershipWatch:
        return _Watch(self, name, on_change)

    def forget(self, name: str) -> None:
        """Remove the abort record and stats of ``name`` (its MD entry is the service's business)."""

        def change(data: dict[str, str]) -> None:
            for key in ("aborted", "stats"):
                values = self._json_key(data, key)
                values.pop(name, None)
                data[key] = json.dumps(values, sort_keys=True)

        self._update_cm(change)

    def close(self) -> None:
        self.kube.close()


def _pod_ip_env(name: str = POD_IP_ENV) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _mount_host_paths(spec: dict[str, Any], paths: Iterable[str]) -> None:
    """Mount each host path at the same path in every container (local buckets, fqn, the bucket map)."""
    volumes = list(spec.get("volumes") or [])
    mounts = []
    for i, path in enumerate(paths):
        vol = f"ais-etl-shared-{i}"
        volumes.append({"name": vol, "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
        mounts.append({"name": vol, "mountPath": path})
    spec["volumes"] = volumes
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        c["volumeMounts"] = list(c.get("volumeMounts") or []) + [dict(m) for m in mounts]


def _readiness_url(pod: Mapping[str, Any]) -> str | None:
    container = (pod.get("spec") or {}).get("containers", [{}])[0]
    http_get = (container.get("readinessProbe") or {}).get("httpGet") or {}
    ip = (pod.get("status") or {}).get("podIP")
    if not http_get or not ip:
        return None
    port = http_get.get("port")
    if not isinstance(port, int):
        port = _main_port(pod)
    path = str(http_get.get("path") or "/")
    return f"http://{ip}:{port}{path if path.startswith('/') else '/' + path}"


def _probe(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return 200 <= resp.status < 400, f"readiness endpoint answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"readiness endpoint {url} answered {exc.code}"
    except OSError as exc:
        return False, f"readiness endpoint {url} unreachable: {exc}"
