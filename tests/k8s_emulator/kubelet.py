"""The process kubelet: run every pod of the emulated cluster as local processes.

The kubelet keeps one :class:`~tests.k8s_emulator.podworker.PodWorker` thread per pod (scheduling,
starting, restarts, probes, status: see that module) and answers what the API server and the test
hooks ask: create and delete pods, find a pod's worker, kill a container, clean up on close.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import psutil

from airflow_ais_etl.cluster.local.podrunner import start_pod
from airflow_ais_etl.etl.runtimes import local_image_command
from tests.k8s_emulator.images import ImageCatalog
from tests.k8s_emulator.objects import node_is_ready, not_found, rfc3339
from tests.k8s_emulator.podstatus import PodPhase, pod_phase
from tests.k8s_emulator.podworker import PodWorker
from tests.k8s_emulator.scheduler import Requests, pod_requests
from tests.k8s_emulator.volumes import claim_volume_dirs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_ais_etl.cluster.local.processes import LocalPod
    from tests.k8s_emulator.events import EventRecorder
    from tests.k8s_emulator.store import Store

__all__ = ["MARK_ENV", "Kubelet", "image_command"]

MARK_ENV = "K8S_EMULATOR_MARK"


def image_command(image: str) -> list[str] | None:
    """Return the local program of an image that has no ``command`` (the backends' one mapping)."""
    return local_image_command(image)


class Kubelet:
    """Run every pod of the emulated cluster as local processes.

    :param store: the object store
    :param events: the event recorder
    :param workdir: where pod directories live
    :param mark: value of ``K8S_EMULATOR_MARK`` in every container's environment (finds strays)
    :param backoff: ``(base, cap)`` of container restart and image pull back-off, in seconds
    :param probe_period_max: cap on readiness ``periodSeconds`` (None honours it exactly)
    :param images: the images on the nodes and in the registry (default: see :class:`ImageCatalog`)
    :param pull_seconds: how long a successful image pull takes
    """

    def __init__(
        self,
        store: Store,
        events: EventRecorder,
        workdir: Path,
        *,
        mark: str,
        backoff: tuple[float, float] = (10.0, 300.0),
        probe_period_max: float | None = None,
        images: ImageCatalog | None = None,
        pull_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.events = events
        self.workdir = workdir
        self.mark = mark
        self.backoff_base, self.backoff_cap = backoff
        self.probe_period_max = probe_period_max
        self.images = images or ImageCatalog()
        self.pull_seconds = pull_seconds
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.lock = threading.RLock()
        self.all_pids: set[int] = set()
        self.closed = False
        self.on_pod_removed: Callable[[str], None] | None = None

    def backoff(self, attempt: int) -> float:
        """Return the delay before restart number ``attempt`` (0 = immediate)."""
        if attempt <= 0:
            return 0.0
        return float(min(self.backoff_base * 2 ** (attempt - 1), self.backoff_cap))

    def load(self) -> dict[str, int]:
        """Count pods per node (for spreading)."""
        with self.lock:
            out: dict[str, int] = {}
            for w in self.workers.values():
                if w.node:
                    out[w.node] = out.get(w.node, 0) + 1
            return out

    def requested(self) -> dict[str, Requests]:
        """Sum the requests of the pods bound to each node that have not finished (for fitting)."""
        with self.lock:
            workers = [w for w in self.workers.values() if w.node and w.bound]
        out: dict[str, Requests] = {}
        for w in workers:
            if pod_phase(w) in (PodPhase.SUCCEEDED, PodPhase.FAILED):
                continue
            node = out.setdefault(w.node, {})
            for k, v in pod_requests(w.pod).items():
                node[k] = node.get(k, 0) + v
        return out

    def node_ready(self, name: str) -> bool:
        """Tell whether the node exists and is Ready."""
        node = self.store.find("nodes", "", name)
        return node is not None and node_is_ready(node)

    def start(self, pod: dict[str, Any], workdir: Path, worker: PodWorker) -> LocalPod:
        """Start ``pod`` with the project's pod runner (called on the worker's own thread)."""
        local = start_pod(
            pod,
            workdir,
            ip=worker.ip,
            node_name=worker.node,
            namespace=worker.namespace,
            image_command=image_command,
            extra_base_env={MARK_ENV: f"{self.mark}/{worker.uid}"},
            die_with_parent=True,
            key_resolver=lambda kind, name, key: self.key_value(worker.namespace, kind, name, key),
            volume_dirs=claim_volume_dirs(self.store, worker.namespace, pod),
        )
        with self.lock:
            for c in local.containers:
                self.all_pids.add(c.shim_pid)
        return local

    def runnable(self, container: dict[str, Any]) -> bool:
        """Tell whether the emulator can run ``container`` (it has a ``command``, or a runtime image)."""
        return bool(container.get("command")) or image_command(str(container.get("image", ""))) is not None

    def key_value(self, namespace: str, kind: str, name: str, key: str) -> str | None:
        """Return a key of a Secret (base64 ``data`` decoded) or ConfigMap, as env refs read it."""
        resource = "secrets" if kind == "Secret" else "configmaps"
        obj = self.store.find(resource, namespace, name)
        value = ((obj or {}).get("data") or {}).get(key)
        if value is None:
            return None
        return base64.b64decode(value).decode() if resource == "secrets" else str(value)

    def reap(self, pid: int) -> None:
        """Collect an exited shim so that it does not linger as a zombie."""
        if pid:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    # -- API entry points ---------------------------------------------------------------------
    def pod_created(self, pod: dict[str, Any]) -> None:
        """Start a worker for a newly created pod."""
        with self.lock:
            if self.closed:
                return
            worker = PodWorker(self, pod)
            self.workers[(worker.namespace, worker.pod_name)] = worker
            worker.start()

    def worker(self, namespace: str, name: str) -> PodWorker:
        """Return the worker of a pod or raise 404."""
        with self.lock:
            w = self.workers.get((namespace, name))
        if w is None:
            raise not_found("pods", name)
        return w

    def delete_pod(self, namespace: str, name: str, grace: int | None) -> dict[str, Any]:
        """Delete a pod: graceful (deletionTimestamp, SIGTERM, then removal) or immediate."""
        pod = self.store.get("pods", namespace, name)
        if grace is None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        with self.lock:
            w = self.workers.get((namespace, name))
        if w is None or grace <= 0 or not w.bound:
            removed = self.store.remove("pods", namespace, name)
            if w is not None:
                w.request_stop(0, remove=False)
            return removed
        current = pod["metadata"].get("deletionGracePeriodSeconds")
        if current is not None and int(current) <= grace:
            return pod

        def mark(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = rfc3339(time.time() + grace)
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        marked = self.store.modify("pods", namespace, name, mark)
        w.request_stop(float(grace), remove=True)
        return marked

    def pod_removed(self, worker: PodWorker) -> None:
        """Forget a worker whose pod object is gone and let the namespace finish terminating."""
        self.forget(worker)
        if self.on_pod_removed is not None:
            self.on_pod_removed(worker.namespace)

    def forget(self, worker: PodWorker) -> None:
        """Drop a finished worker from the table (unless a newer pod took its name)."""
        with self.lock:
            key = (worker.namespace, worker.pod_name)
            if self.workers.get(key) is worker:
                del self.workers[key]

    def workers_on(self, node: str) -> list[PodWorker]:
        """Return the workers of the pods bound to ``node``."""
        with self.lock:
            return [w for w in self.workers.values() if w.node == node]

    def kill_container(
        self, namespace: str, name: str, sig: int = signal.SIGKILL, container: str | None = None
    ) -> int:
        """Send ``sig`` to a container's program (not its shim); return the pid signalled."""
        w = self.worker(namespace, name)
        c = w.container(container)
        if c.proc is None:
            raise RuntimeError(f"container {c.name} of pod {namespace}/{name} is not running")
        pid = c.proc.pid() or c.proc.shim_pid
        os.kill(pid, sig)
        w.wake.set()
        return pid

    def kill_strays(self) -> None:
        """SIGKILL every descendant process that carries this emulator's mark (e.g. running init containers)."""
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if proc.environ().get(MARK_ENV, "").startswith(self.mark + "/"):
                        proc.kill()

    def close(self, timeout: float = 15.0) -> None:
        """Stop every pod immediately and wait for the workers to finish."""
        with self.lock:
            self.closed = True
            workers = list(self.workers.values())
        for w in workers:
            w.request_stop(0, remove=False)
        deadline = time.monotonic() + timeout
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
            self.kill_strays()  # unblocks init containers the runner waits for
            for w in workers:
                w.join(0.1)
        self.kill_strays()
        for pid in list(self.all_pids):
            self.reap(pid)
