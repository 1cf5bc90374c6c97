"""The Kubernetes API emulator: object store, HTTP API server and process kubelet in one object."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from tests.k8s_emulator.api import Api
from tests.k8s_emulator.events import EventRecorder
from tests.k8s_emulator.images import ImageCatalog, ImageSource
from tests.k8s_emulator.kubelet import MARK_ENV, Kubelet
from tests.k8s_emulator.metrics import UsageSampler
from tests.k8s_emulator.objects import (
    RESOURCES,
    ApiError,
    default_namespace,
    node_conditions,
    node_is_ready,
    node_object,
)
from tests.k8s_emulator.podstatus import NODE_IP
from tests.k8s_emulator.server import ApiServer
from tests.k8s_emulator.store import Store

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class K8sEmulator:
    """A Kubernetes API server on 127.0.0.1 whose pods run as local processes.

    :param workdir: where pod directories go (a temporary directory when None)
    :param history: watch history kept before compaction (410 Gone beyond it)
    :param backoff: ``(base, cap)`` seconds for container restarts and image pull retries
    :param probe_period_max: cap on readiness ``periodSeconds`` (None honours it)
    :param bookmark_interval: seconds between BOOKMARK events on watches that allow them; None (the
        default) sends none, as real API servers mostly do, so that nothing relies on them
    :param present_images: images every node holds from the start (names or a predicate; None: the
        project's runtime images). ``imagePullPolicy`` decides what happens to the others
    :param registry_images: images the fake registry serves (names or a predicate; None: every image)
    :param pull_seconds: how long a successful pull takes
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        history: int = 5000,
        backoff: tuple[float, float] = (10.0, 300.0),
        probe_period_max: float | None = None,
        bookmark_interval: float | None = None,
        present_images: ImageSource = None,
        registry_images: ImageSource = None,
        pull_seconds: float = 0.0,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="k8s-emulator-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mark = uuid.uuid4().hex
        self.bookmark_interval = bookmark_interval
        self._default_bookmark_interval = bookmark_interval
        self.store = Store(history)
        self.events = EventRecorder(self.store)
        self.kubelet = Kubelet(
            self.store,
            self.events,
            self.workdir / "pods",
            mark=self.mark,
            backoff=backoff,
            probe_period_max=probe_period_max,
            images=ImageCatalog(present_images, registry_images),
            pull_seconds=pull_seconds,
        )
        self.sampler = UsageSampler()
        self.api = Api(self)
        self.kubelet.on_pod_removed = self.api.finalize_namespace
        for name in DEFAULT_NAMESPACES:
            self.create_namespace(name)
        self._baseline: dict[str, dict[str, dict[str, Any]]] = {}
        self.port = 0
        self._server = ApiServer(self.api)
        self.port = self._server.port
        self._closed = False

    @property
    def url(self) -> str:
        """Base URL of the API server."""
        return self._server.url

    # -- kubeconfig -------------------------------------------------------------------------
    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        """Return a kubeconfig (as a dict) that points at this emulator."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write :meth:`kubeconfig` to ``path`` (JSON is valid YAML) and return it."""
        path.write_text(json.dumps(self.kubeconfig(namespace), indent=2))
        return path

    # -- nodes ------------------------------------------------------------------------------
    def complete_node(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Fill a Node created through the API with what its kubelet would report."""
        meta = obj.get("metadata") or {}
        full = node_object(
            str(meta.get("name")),
            dict(meta.get("labels") or {}),
            ready=True,
            ip=NODE_IP,
            boot_id=str(uuid.uuid4()),
            now=time.time(),
        )
        full["metadata"].update({k: v for k, v in meta.items() if k != "labels"})
        full["spec"].update(obj.get("spec") or {})
        given = obj.get("status") or {}
        if given.get("conditions"):
            full["status"]["conditions"] = given["conditions"]
        full["kind"], full["apiVersion"] = "Node", "v1"
        return full

    def add_node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        ready: bool = True,
        *,
        allocatable: dict[str, str] | None = None,
        taints: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Register a node (as its kubelet would) and return it.

        :param allocatable: e.g. ``{"cpu": "500m"}`` (overrides the default 2 CPUs, ~7.6 GiB, 110 pods)
        :param taints: e.g. ``[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]``
        """
        node = node_object(
            name, dict(labels or {}), ready=ready, ip=NODE_IP, boot_id=str(uuid.uuid4()), now=time.time()
        )
        node["kind"], node["apiVersion"] = "Node", "v1"
        node["status"]["allocatable"].update(allocatable or {})
        if taints:
            node["spec"]["taints"] = [dict(t) for t in taints]
        created = self.store.create("nodes", "", node)
        self._wake_workers()
        return created

    def remove_node(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Delete a node: its pods' processes are killed and the pods deleted (waits for both)."""
        removed = self.store.remove("nodes", "", name)
        workers = self.kubelet.workers_on(name)
        for w in workers:
            w.request_stop(0, remove=True)
        deadline = time.monotonic() + timeout
        for w in workers:
            w.join(max(deadline - time.monotonic(), 0.1))
        return removed

    def set_node_ready(self, name: str, ready: bool) -> dict[str, Any]:
        """Flip a node's Ready condition (NotReady: no new pods there, its pods turn unready)."""

        def change(node: dict[str, Any]) -> None:
            node["status"]["conditions"] = node_conditions(ready, time.time())

        updated = self.store.modify("nodes", "", name, change)
        self._wake_workers()
        return updated

    def _wake_workers(self) -> None:
        with self.kubelet.lock:
            workers = list(self.kubelet.workers.values())
        for w in workers:
            w.wake.set()

    # -- fault hooks ------------------------------------------------------------------------
    def kill_container(
        self, namespace: str, pod: str, signal: int = signal.SIGKILL, container: str | None = None
    ) -> int:
        """Send ``signal`` to a container's program; return the pid signalled."""
        return self.kubelet.kill_container(namespace, pod, signal, container)

    def fail_image(self, image: str, failing: bool = True) -> None:
        """Make ``image`` unavailable: gone from every node, and the registry refuses it (``ErrImagePull``).

        ``failing=False`` makes the registry serve it again (the nodes pull it when they need it).
        """
        if failing:
            self.kubelet.images.remove(image)
        self.kubelet.images.set_pullable(image, not failing)

    def refuse_image(self, image: str, refusing: bool = True) -> None:
        """Make the registry refuse ``image`` (nodes keep their copies: only ``Always`` pulls fail)."""
        self.kubelet.images.set_pullable(image, not refusing)

    def remove_image(self, image: str) -> None:
        """Delete ``image`` from every node (the registry still serves it unless :meth:`fail_image`)."""
        self.kubelet.images.remove(image)

    def image_present(self, node: str, image: str) -> bool:
        """Tell whether ``node`` holds ``image`` (preloaded or pulled)."""
        return self.kubelet.images.present(node, image)

    def fail_probe(self, namespace: str, pod: str, failing: bool = True) -> None:
        """Make the pod's readiness probes fail (or pass through to the real probe again)."""
        w = self.kubelet.worker(namespace, pod)
        w.probe_failing = failing
        w.wake.set()

    def send_bookmarks(self, interval: float | None = 1.0) -> None:
        """Send a BOOKMARK every ``interval`` seconds on watches that allow them (None: never).

        Applies to watches opened from now on; :meth:`reset` restores the constructor's choice.
        """
        self.bookmark_interval = interval

    def open_watches(self) -> int:
        """Return how many watch streams are being served (a client that left is noticed within 0.2 s)."""
        return self.api.open_watches()

    def watch_ends(self) -> list[str]:
        """Return who ended each finished watch, oldest first: ``"client"`` (it left) or ``"server"``.

        ``"server"`` means the watch's timeout, a 410 Gone or the emulator closing; :meth:`reset`
        forgets them.
        """
        with self.api._watches_lock:
            return list(self.api.watch_ends)

    def compact(self) -> None:
        """Drop the watch history: watches from older resourceVersions now get 410 Gone."""
        self.store.compact()

    def received_objects(self, resource: str | None = None, verb: str | None = None) -> list[dict[str, Any]]:
        """Return copies of every body the server received on create/replace (oldest first).

        :param resource: only this resource (``"pods"``, ``"services"``, ...)
        :param verb: only ``"create"`` or ``"replace"``
        """
        with self.api._received_lock:
            return [
                copy.deepcopy(body)
                for v, r, body in self.api.received
                if (resource in (None, r)) and (verb in (None, v))
            ]

    def pod_pids(self, namespace: str, pod: str) -> list[int]:
        """Return the pids of a pod's shims and programs (for tests that check clean-up)."""
        w = self.kubelet.worker(namespace, pod)
        out = []
        for c in w.mains:
            if c.proc is not None:
                out.append(c.proc.shim_pid)
                if (pid := c.proc.pid()) is not None:
                    out.append(pid)
        return out

    def stray_processes(self) -> list[int]:
        """Return live descendant processes started for this emulator's pods."""
        out = []
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(MARK_ENV, "").startswith(
                        self.mark + "/"
                    ):
                        out.append(proc.pid)
        return out

    def wait_for(self, predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
        """Poll ``predicate()`` until it returns something truthy; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ApiError):
                value = predicate()
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    # -- sharing one emulator between tests -------------------------------------------------
    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Create an Active namespace (as ``kubectl create namespace`` would) and return it.

        :param labels: e.g. ``pod-security.kubernetes.io/enforce: restricted`` (pod creation enforces it)
        """
        metadata: dict[str, Any] = {"name": name, "labels": dict(labels)} if labels else {"name": name}
        ns: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
        default_namespace(ns)
        return self.store.create("namespaces", "", ns)

    def checkpoint(self) -> None:
        """Remember the current nodes and namespaces: :meth:`reset` returns to them."""
        self._baseline = {
            kind: {obj["metadata"]["name"]: obj for obj in self.store.list(kind)[0]}
            for kind in ("nodes", "namespaces")
        }

    def reset(self, timeout: float = 30.0) -> list[int]:
        """Make the emulator as a fresh one again (at the :meth:`checkpoint`), for the next test.

        Every pod is deleted at once (grace 0) and its processes stopped; every other namespaced object
        goes; namespaces and nodes return to the checkpoint (a node that changed is registered anew);
        images (pulls, removals, refusals), the BOOKMARK choice, the watch ends and the received bodies
        return to their start. Returns the pod processes that were still alive once their pods were gone
        (they are killed).
        """
        for pod in self.store.list("pods")[0]:
            with contextlib.suppress(ApiError):
                self.kubelet.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], 0)
        with self.kubelet.lock:
            workers = list(self.kubelet.workers.values())
        for w in workers:
            w.request_stop(0, remove=False)
        deadline = time.monotonic() + timeout
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
            self.kubelet.kill_strays()  # as close() does: unblocks init containers the runner waits for
            for w in workers:
                w.join(0.1)
        self.kubelet.kill_strays()
        for pid in list(self.kubelet.all_pids):
            self.kubelet.reap(pid)
        leaked = self.stray_processes() + [p for p in self.kubelet.all_pids if _alive(p)]
        for pid in leaked:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        self.kubelet.all_pids.clear()  # all gone: a later test must not mistake a reused pid for a leak
        for resource, res in RESOURCES.items():
            if res.namespaced:
                for obj in self.store.list(resource)[0]:
                    with contextlib.suppress(ApiError):
                        self.store.remove(resource, obj["metadata"]["namespace"], obj["metadata"]["name"])
        for kind in ("namespaces", "nodes"):
            baseline = self._baseline.get(kind, {})
            current = {obj["metadata"]["name"]: obj for obj in self.store.list(kind)[0]}
            for name, obj in current.items():
                before = baseline.get(name)
                if (
                    before is None
                    or before["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
                ):
                    self.store.remove(kind, "", name)
            for name, before in baseline.items():
                if (
                    name in current
                    and before["metadata"]["resourceVersion"] == current[name]["metadata"]["resourceVersion"]
                ):
                    continue
                if kind == "nodes":
                    labels = dict(before["metadata"].get("labels") or {})
                    self.add_node(name, labels, ready=node_is_ready(before))
                else:
                    self.create_namespace(name)
        self.checkpoint()
        self.kubelet.images.reset()
        self.bookmark_interval = self._default_bookmark_interval
        with self.api._watches_lock:
            self.api.watch_ends.clear()
        with self.api._received_lock:
            self.api.received.clear()
        return sorted(set(leaked))

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Kill every pod process, stop the server and free its port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.store.close()
        self._server.close()
        self.kubelet.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> K8sEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
