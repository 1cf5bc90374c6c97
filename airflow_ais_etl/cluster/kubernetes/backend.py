"""The ``kubernetes`` backend: targets are Ready nodes, ETL pods are Pods + Services in one namespace.

Pods come from the model's pod specs (:func:`~airflow_ais_etl.etl.podspec.prepare_pod`) plus a native
gateway sidecar that serves ``AIS_TARGET_URL`` (hpull/hrev/url). The ETL metadata lives in the
ConfigMap ``ais-etl-md``; running ETLs are found by pod labels, so any worker can stop or use an
ETL another worker started. Every API call goes through :mod:`airflow_ais_etl.cluster.kubernetes.pods`.

Code and dependencies of init-code ETLs live in one ConfigMap per ETL
(:mod:`~airflow_ais_etl.cluster.kubernetes.codemap`), read as env by ``configMapKeyRef``; with the
gateway Secret and the optional NetworkPolicy they are created and deleted together
(:mod:`~airflow_ais_etl.cluster.kubernetes.etlobjects`).

The backend wires together modules with one job each: :mod:`~airflow_ais_etl.cluster.kubernetes.gateway`
(building the pods), :mod:`~airflow_ais_etl.cluster.kubernetes.startup` (waiting for Ready, fail-fast
diagnosis), :mod:`~airflow_ais_etl.cluster.kubernetes.state` (the shared ConfigMap),
:mod:`~airflow_ais_etl.cluster.kubernetes.membership` (membership watches),
:mod:`~airflow_ais_etl.cluster.kubernetes.health` (pod health) and
:mod:`~airflow_ais_etl.cluster.kubernetes.addressing` (pod URLs).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.base import (
    Backend,
    BucketRef,
    HealthStatus,
    MembershipWatch,
    PodEndpoint,
    PodLogs,
    PodMetrics,
)
from airflow_ais_etl.cluster.bucketmap import register_bucket
from airflow_ais_etl.cluster.kubernetes.addressing import ADDRESS_MODES, POD_IP, pod_url
from airflow_ais_etl.cluster.kubernetes.claims import claims_of
from airflow_ais_etl.cluster.kubernetes.codemap import reference_code
from airflow_ais_etl.cluster.kubernetes.directput import signed_put_grant, writable_in_pods
from airflow_ais_etl.cluster.kubernetes.etlobjects import EtlObjects, delete_etl_objects, pod_token
from airflow_ais_etl.cluster.kubernetes.gateway import GATEWAY_CONTAINER, GatewayConfig, build_pod, io_command
from airflow_ais_etl.cluster.kubernetes.health import health_of
from airflow_ais_etl.cluster.kubernetes.jobmap import ConfigMapJobs
from airflow_ais_etl.cluster.kubernetes.lastlogs import (
    drop_last_logs,
    keep_last_logs,
    live_logs,
    read_last_logs,
    select_target,
)
from airflow_ais_etl.cluster.kubernetes.membership import (
    Baseline,
    MembershipWatcher,
    WatchKind,
    node_ready,
    pod_change,
    take_baseline,
    target_changes,
    target_id,
)
from airflow_ais_etl.cluster.kubernetes.netpolicy import NetworkPolicyConfig
from airflow_ais_etl.cluster.kubernetes.objects import (
    etl_selector,
    is_deleting,
    label_of,
    name_of,
    selector,
)
from airflow_ais_etl.cluster.kubernetes.podknobs import PodKnobs, apply_knobs
from airflow_ais_etl.cluster.kubernetes.podmetrics import read_metrics
from airflow_ais_etl.cluster.kubernetes.pods import KubeApiError, KubeClient, WatchStream
from airflow_ais_etl.cluster.kubernetes.startup import check_ready, wait_ready
from airflow_ais_etl.cluster.kubernetes.state import ConfigMapLeases, ConfigMapState
from airflow_ais_etl.cluster.local.state import default_home
from airflow_ais_etl.etl.constants import ARG_FQN
from airflow_ais_etl.etl.errors import EtlError, EtlNotFoundError, PodStartError, ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podspec import HOSTNAME_LABEL, POD_LABEL_TARGET, Target
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIMES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from airflow_ais_etl.cluster.directput import DirectPutGrant
    from airflow_ais_etl.etl.md import EtlMD
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["KubernetesBackend"]

log = logging.getLogger(__name__)

_WATCH_SECONDS = 30
_FORCE_WAIT = 45.0
"""Seconds to wait for pods deleted with no grace period to go away."""
_DEFAULT_RUNTIME = "python3.11v2"


# --------------------------------------------------------------------------------------------------
# the backend


class KubernetesBackend(ConfigMapLeases, ConfigMapJobs, Backend):
    """ETL pods on the Ready nodes of a Kubernetes cluster, reached through a ``kubernetes`` connection.

    An ``ais_etl`` connection sets every argument but ``poll_interval``: see
    :meth:`~airflow_ais_etl.hooks.settings.AisEtlSettings.kubernetes_backend_kwargs`.

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
        makes them visible); namespaces enforcing the baseline or restricted Pod Security level
        refuse such pods
    :param volume_claims: PersistentVolumeClaims mounted at directories of this machine, like
        ``shared_paths`` (:mod:`~airflow_ais_etl.cluster.kubernetes.claims`)
    :param network_policy: a NetworkPolicy per ETL letting in only the workers labelled by
        ``network_policy_namespaces``/``_pods`` (:mod:`~airflow_ais_etl.cluster.kubernetes.netpolicy`)
    :param gateway_image: image of the gateway sidecar (default: the runtime image)
    :param gateway_port: port of the gateway sidecar (moved up by one if the transformer uses it)
    :param stop_grace: grace period of pod deletion, seconds
    :param stop_timeout: how long to wait for graceful deletion before deleting by force
    :param pod_knobs: the fields of :class:`~airflow_ais_etl.cluster.kubernetes.podknobs.PodKnobs`
        (resources, image_pull_secrets, tolerations, pod_labels, ...), as ``self.pod_knobs``
    :param poll_interval: readiness poll interval (default: the reference's ``probing_interval``)
    """

    kind = "kubernetes"

    def __init__(
        self,
        kubernetes_conn_id: str | None = None,
        namespace: str | None = None,
        node_selector: Mapping[str, str] | None = None,
        *,
        address: str = POD_IP,
        gateway_secret_name: str | None = None,
        scheduling_timeout: float = 60.0,
        buckets_file: str | None = None,
        shared_paths: Iterable[str] = (),
        mount_shared_paths: bool = True,
        volume_claims: Mapping[str, Any] | None = None,
        network_policy: bool = False,
        network_policy_namespaces: Mapping[str, str] | None = None,
        network_policy_pods: Mapping[str, str] | None = None,
        gateway_image: str | None = None,
        gateway_port: int = 8081,
        stop_grace: int = 10,
        stop_timeout: float = 30.0,
        poll_interval: float | None = None,
        **pod_knobs: Any,
    ) -> None:
        if address not in ADDRESS_MODES:
            raise ValueError(f"address must be one of {', '.join(ADDRESS_MODES)}, got {address!r}")
        self.kube = KubeClient(kubernetes_conn_id, namespace)
        self.namespace = self.kube.namespace
        self.store = ConfigMapState(self.kube)
        self.node_selector = dict(node_selector or {})
        self.node_label_selector = selector(self.node_selector)
        self.address = address
        self.gateway_secret_name = gateway_secret_name
        self.scheduling_timeout = float(scheduling_timeout)
        self.shared_paths = tuple(str(Path(p).expanduser().resolve()) for p in shared_paths)
        self.mount_shared_paths = mount_shared_paths
        self.claims = claims_of(volume_claims)
        self.volume_claims = {
            c.path: {"claim_name": c.claim_name, "read_only": c.read_only} for c in self.claims
        }
        self.policy = NetworkPolicyConfig(
            network_policy, dict(network_policy_namespaces or {}), dict(network_policy_pods or {})
        )
        self.network_policy, self.network_policy_namespaces, self.network_policy_pods = astuple(self.policy)
        self.visible_paths = self.shared_paths + tuple(c.path for c in self.claims)  # seen at the same path
        if buckets_file:
            self.buckets_file = str(Path(buckets_file).expanduser().resolve())
        elif self.visible_paths:
            self.buckets_file = str(
                Path(self.visible_paths[0]) / ".airflow-ais-etl" / f"buckets-{self.namespace}.json"
            )
        else:
            self.buckets_file = str(default_home() / "kubernetes" / self.namespace / "buckets.json")
        self.gateway_image = gateway_image
        self.gateway_port = gateway_port
        self.stop_grace = stop_grace
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.pod_knobs = PodKnobs.checked(**pod_knobs)

    # ---------------------------------------------------------------- targets
    def targets(self) -> list[Target]:
        nodes, _ = self.kube.list_nodes(self.node_label_selector)
        out = []
        for node in sorted(nodes, key=name_of):
            if node_ready(node):
                name = name_of(node)
                out.append(Target(target_id(name), label_of(node, HOSTNAME_LABEL) or name))
        return out

    def etl_selector(self, name: str) -> str:
        return etl_selector(name)

    # ---------------------------------------------------------------- shared state (one ConfigMap)
    def read_md(self) -> EtlMD:
        return self.store.read_md()

    def update_md(self, change: Callable[[EtlMD], object]) -> EtlMD:
        return self.store.update_md(change)

    def record_abort(self, name: str, cause: str | None) -> None:
        """Remember (or with None, forget) why ``name`` was aborted; ``info`` reports it."""
        self.store.record_abort(name, cause)

    def aborted_cause(self, name: str) -> str | None:
        return self.store.aborted_cause(name)

    def abort(self, name: str, cause: str) -> None:
        """Record why ``name`` is aborted (running jobs see it) and stop its pods everywhere."""
        self.record_abort(name, cause)
        log.warning("etl %s: %s, aborting...", name, cause)
        self.stop_pods(name)

    def add_stats(self, name: str, delta: Mapping[str, int]) -> None:
        self.store.add_stats(name, delta)

    def stats(self, name: str) -> dict[str, int]:
        return self.store.stats(name)

    def forget(self, name: str) -> None:
        """Remove the abort record, stats and last pod logs of ``name`` (its MD entry is the service's)."""
        self.store.forget(name)
        drop_last_logs(self.kube, name)
        self.forget_jobs(name)

    def bucket_ref(self, url: str) -> BucketRef:
        return register_bucket(self.buckets_file, url)

    def direct_put_grant(self, name: str, url: str, conn_id: str | None = None) -> DirectPutGrant | None:
        """A signed grant for the pods' own gateway sidecars, which write with their own credentials."""
        writable = writable_in_pods(self.shared_paths, self.claims)
        return signed_put_grant(self.kube, name, url, writable, lambda: self._pods(name))

    # ---------------------------------------------------------------- pods
    def _gateway_config(self) -> GatewayConfig:
        mounted = self.shared_paths if self.mount_shared_paths else ()
        return GatewayConfig(
            self.gateway_port, self.buckets_file, self.gateway_secret_name, mounted, self.claims
        )

    def _template(self, msg: InitMsg, env: dict[str, str]) -> tuple[dict[str, Any], str]:
        """Return the pod spec of ``msg`` and the default sidecar image (adding code env to ``env``)."""
        default_image = RUNTIMES[_DEFAULT_RUNTIME].image
        if isinstance(msg, InitCodeMsg):
            env.update(code_env(msg))
            runtime = RUNTIMES.get(msg.runtime)
            return code_pod_spec(msg), runtime.image if runtime else default_image
        if isinstance(msg, InitSpecMsg):
            return parse_pod_spec(msg.spec, etl_name=msg.name), default_image
        raise ValidationError(f"unsupported init message kind {type(msg).__name__}", etl_name=msg.name)

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
        if self.endpoints(msg.name):
            raise EtlError("etl is already running on this cluster; stop it first", etl_name=msg.name)
        env = dict(extra_env or {})
        template, default_image = self._template(msg, env)
        knobs = self.pod_knobs.with_options(pod_options)
        if msg.arg_type == ARG_FQN and not self.visible_paths:
            raise ValidationError(
                "arg type 'fqn' sends the pod a local file path, but no path of this machine is visible "
                "inside the Kubernetes pods: set the connection extra volume_claims or shared_paths "
                "(directories mounted at the same path in every ETL pod) or use the default arg type",
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
        config = self._gateway_config()
        prepared = [
            (
                t,
                build_pod(
                    config,
                    msg,
                    template,
                    t,
                    env=env,
                    image=image,
                    namespace=self.namespace,
                    labels=labels,
                    annotations=annotations,
                ),
            )
            for t in targets
        ]
        for _target, prep in prepared:
            apply_knobs(prep.pod, knobs, GATEWAY_CONTAINER, ours=isinstance(msg, InitCodeMsg))
            reference_code(prep.pod, msg.name)
        owned = EtlObjects.build(msg, self.namespace, prepared[0][1].pod, self.policy)
        self._force_remove(msg.name)  # leftovers of a crashed run (the reference's pre-clean)
        self.record_abort(msg.name, None)
        drop_last_logs(self.kube, msg.name)  # the last run's logs are kept until this start
        try:
            owned.create(self.kube)
            for _target, prep in prepared:
                self.kube.create_service(prep.service)
                self.kube.create_pod(prep.pod)
            if wait:
                wait_ready(
                    self.kube,
                    msg,
                    prepared,
                    scheduling_timeout=self.scheduling_timeout,
                    poll_interval=self.poll_interval,
                )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self._force_remove(msg.name)
            if isinstance(exc, KubeApiError):
                raise PodStartError(str(exc), etl_name=msg.name) from exc
            raise
        return self.endpoints(msg.name)

    def check_started(self, msg: InitMsg, elapsed: float) -> bool:
        names = {
            label_of(p, POD_LABEL_TARGET): name_of(p) for p in self._pods(msg.name) if not is_deleting(p)
        }
        pods = [(t, names.get(t.id)) for t in self.targets()]
        return check_ready(self.kube, msg, pods, elapsed=elapsed, scheduling_timeout=self.scheduling_timeout)

    def _objects(self, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Return the Services and the Pods of ETL ``name``."""
        selector = self.etl_selector(name)
        pods, _ = self.kube.list_pods(selector)
        return self.kube.list_services(selector), pods

    def _delete(
        self, services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], grace: int
    ) -> None:
        for svc in services:
            self.kube.delete_service(name_of(svc))
        for pod in pods:
            self.kube.delete_pod(name_of(pod), grace)

    def _delete_etl_objects(self, name: str) -> None:
        """Delete the Secret, code ConfigMap and NetworkPolicy of ``name`` (by label: leaked ones too)."""
        delete_etl_objects(self.kube, self.etl_selector(name), policies=self.network_policy)

    def _force_remove(self, name: str) -> None:
        """Delete every Service, Pod and Secret of ``name`` immediately and wait for the pods to go."""
        services, pods = self._objects(name)
        self._delete(services, pods, 0)
        if pods:
            self._wait_gone(name, _FORCE_WAIT)
        self._delete_etl_objects(name)

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

    def stop_pods(self, name: str, *, cause: str | None = None) -> bool:
        services, pods = self._objects(name)
        if not pods and not services:
            self._delete_etl_objects(name)
            return False
        if cause:  # before the pods go: the watches of running jobs name who stopped the ETL
            self.store.record_abort(name, cause, "stopped")
        if pods:  # their logs go with them: keep the tails (an abort quotes the failing target's)
            keep_last_logs(self.kube, name, pods)
        self._delete(services, [p for p in pods if not is_deleting(p)], self.stop_grace)
        if not self._wait_gone(name, self.stop_timeout):
            remaining, _ = self.kube.list_pods(self.etl_selector(name))
            log.warning(
                "etl %s: %d pod(s) still terminating after %.0fs: deleting by force",
                name,
                len(remaining),
                self.stop_timeout,
            )
            self._delete((), remaining, 0)
            if not self._wait_gone(name, _FORCE_WAIT):
                raise EtlError(
                    f"pods of etl {name} in namespace {self.namespace} did not go away", etl_name=name
                )
        self._delete_etl_objects(name)  # after the pods: a terminating gateway still reads its env
        return bool(pods)

    def _pods(self, name: str) -> list[dict[str, Any]]:
        pods, _ = self.kube.list_pods(self.etl_selector(name))
        return sorted(pods, key=lambda p: label_of(p, POD_LABEL_TARGET))

    def endpoints(self, name: str) -> list[PodEndpoint]:
        out = []
        token = pod_token(self.kube, name)
        for pod in self._pods(name):
            url = pod_url(pod, self.address, self.namespace)
            if is_deleting(pod) or url is None:
                continue
            tid = label_of(pod, POD_LABEL_TARGET)
            out.append(PodEndpoint(tid, name_of(pod), url, io_command(pod), token=token))
        return out

    def _require(self, name: str) -> list[dict[str, Any]]:
        pods = [p for p in self._pods(name) if not is_deleting(p)]
        if not pods:
            raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
        return pods

    # ---------------------------------------------------------------- observability
    def health(self, name: str) -> list[HealthStatus]:
        return [health_of(pod) for pod in self._require(name)]

    def metrics(self, name: str) -> list[PodMetrics]:
        return read_metrics(self.kube, name, self._require(name))

    def logs(self, name: str, target_id: str | None = None) -> list[PodLogs]:
        """Return the running pods' logs, else the tails the last stop or abort kept (lastlogs)."""
        pods = [p for p in self._pods(name) if not is_deleting(p)]
        logs = live_logs(self.kube, pods) if pods else read_last_logs(self.kube, name)
        if not logs:
            raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
        return select_target(name, logs, target_id)

    # ---------------------------------------------------------------- membership
    def baseline(self, name: str) -> Baseline:
        """Return the state a membership watch compares against (targets, pods, versions)."""
        nodes, nodes_rv = self.kube.list_nodes(self.node_label_selector)
        pods, pods_rv = self.kube.list_pods(self.etl_selector(name))
        return take_baseline(nodes, nodes_rv, pods, pods_rv)

    def open_watch(self, name: str, kind: WatchKind, resource_version: str) -> WatchStream:
        """Watch the target nodes or the pods of ``name`` from a resourceVersion."""
        if kind is WatchKind.NODES:
            return self.kube.watch_nodes(self.node_label_selector, resource_version, _WATCH_SECONDS)
        return self.kube.watch_pods(self.etl_selector(name), resource_version, _WATCH_SECONDS)

    def relist_version(self, name: str, kind: WatchKind) -> str:
        """Return the resourceVersion a new watch of ``kind`` starts from (after a 410 or a failure)."""
        if kind is WatchKind.NODES:
            return self.kube.list_nodes(self.node_label_selector)[1]
        return self.kube.list_pods(self.etl_selector(name))[1]

    def membership_cause(self, name: str, baseline: Baseline) -> str | None:
        """Return what changed since ``baseline`` for ETL ``name`` (None when nothing did).

        Cheapest answers first: a recorded abort, then the targets, then the ETL's objects.
        """
        aborted = self.aborted_cause(name) or self.store.aborted_cause(name, "stopped")
        if aborted:
            return aborted
        changed = target_changes(baseline.targets, (t.id for t in self.targets()))
        if changed:
            return changed
        if not self.kube.list_services(self.etl_selector(name)):
            return f"etl {name} stopped"
        return pod_change(name, baseline, self._pods(name))

    def watch_membership(self, name: str, on_change: Callable[[str], None]) -> MembershipWatch:
        return MembershipWatcher(self, name, on_change)

    def close(self) -> None:
        self.kube.close()
