"""The one module that talks to Kubernetes: the provider's ``KubernetesHook``/``PodManager`` plus the client.

Everything here takes and returns plain dicts (the JSON form of Kubernetes objects), so the backend
never handles client models and a change in cncf-kubernetes or the client touches only this file.
Reads use ``_preload_content=False`` and decode the JSON (or log text) themselves: that keeps every
field the server sent and avoids the 36.x client's log-decoding bug.
"""

from __future__ import annotations

import json
import socket
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager
from kubernetes.client import NetworkingV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity
from kubernetes.watch.watch import iter_resp_lines

from airflow_ais_etl.etl.errors import EtlError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["KubeApiError", "KubeClient", "KubeConflict", "KubeGone", "WatchStream", "pod_usage"]

METRICS_GROUP = "metrics.k8s.io"
METRICS_VERSION = "v1beta1"
REQUEST_TIMEOUT = 30.0


class KubeApiError(EtlError):
    """Report a Kubernetes API failure with its status code and the server's message.

    :param status: HTTP status (0 when the server was not reached)
    """

    def __init__(self, reason: str, *, status: int = 0) -> None:
        super().__init__(reason)
        self.status = status


class KubeConflict(KubeApiError):
    """409: the object already exists, or its resourceVersion is stale."""


class KubeGone(KubeApiError):
    """410: the watch's resourceVersion is older than the server's history."""


def _api_error(exc: ApiException, what: str) -> KubeApiError:
    message = ""
    try:
        body = json.loads(exc.body or "{}")
        message = str(body.get("message") or "")
    except (TypeError, ValueError):
        message = str(exc.body or "")
    text = f"kubernetes API: {what} failed with {exc.status} {exc.reason}" + (
        f": {message}" if message else ""
    )
    status = int(exc.status or 0)
    if status == 409:
        return KubeConflict(text, status=status)
    if status == 410:
        return KubeGone(text, status=status)
    return KubeApiError(text, status=status)


def _decode(resp: Any) -> Any:
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()


def _drain(resp: Any) -> None:
    """Read the whole body before returning the connection (else the next request on it breaks)."""
    try:
        _ = resp.data
    finally:
        resp.release_conn()


def pod_usage(metrics: Mapping[str, Any]) -> tuple[float, int]:
    """Return the CPU (cores) and memory (bytes) a PodMetrics object reports, summed over containers."""
    cpu, mem = 0.0, 0
    for c in metrics.get("containers") or []:
        usage = c.get("usage") or {}
        cpu += float(parse_quantity(usage.get("cpu", "0")))
        mem += int(parse_quantity(usage.get("memory", "0")))
    return cpu, mem


def _socket_of(resp: Any) -> socket.socket | None:
    """Return the socket a streamed (not yet released) urllib3 response reads from."""
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket down, so that a read blocked on it returns at once (and the server sees EOF).

    Closing the response instead would wait for the reader: ``http.client`` closes its buffered
    file under the lock the blocked read holds, until the next byte or the server's timeout.
    """
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already shut down or closed: nothing left to wake
        return


class WatchStream:
    """One watch request: iterate ``(type, object)`` pairs; ``close`` (from any thread) ends it.

    ``close`` never waits for the iterating thread: it shuts the socket down, the blocked read
    fails, and the iterating thread ends quietly and releases the response itself.
    """

    def __init__(self, open_response: Callable[[], Any]) -> None:
        self._open = open_response
        self._resp: Any = None
        self._sock: socket.socket | None = None
        """Taken at open: the connection may serve another request once the response is released."""
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._closed.is_set():
            return
        try:
            self._resp = self._open()
        except ApiException as exc:
            raise _api_error(exc, "watch") from None
        self._sock = _socket_of(self._resp)
        if self._closed.is_set():  # closed while opening: close() may not have seen the socket
            self._release()
            return
        try:
            for line in iter_resp_lines(self._resp):
                if self._closed.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    code = int(obj.get("code") or 0)
                    cls = KubeGone if code == 410 else KubeApiError
                    raise cls(f"kubernetes API: watch failed: {obj.get('message', '')}", status=code)
                yield str(event.get("type")), obj
        except Exception:
            if self._closed.is_set():
                return
            raise
        finally:
            self._release()

    def _release(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            try:
                resp.close()
                resp.release_conn()
            except Exception:
                # closing a half-read stream from another thread may fail; it is gone either way
                return

    def close(self) -> None:
        """End the stream without waiting for its reader (the reader releases the response)."""
        self._closed.set()
        sock = self._sock
        if sock is not None:
            _shutdown(sock)


class KubeClient:
    """Kubernetes access for one namespace through an Airflow ``kubernetes`` connection.

    :param kubernetes_conn_id: the cncf-kubernetes connection (default ``kubernetes_default``)
    :param namespace: where ETL objects live (default: the connection's namespace, else ``default``)
    """

    def __init__(self, kubernetes_conn_id: str | None = None, namespace: str | None = None) -> None:
        self.hook = KubernetesHook(conn_id=kubernetes_conn_id or KubernetesHook.default_conn_name)
        self.namespace = namespace or self.hook.get_namespace() or "default"
        self.core = self.hook.core_v1_client
        self.custom = self.hook.custom_object_client
        self.networking = NetworkingV1Api(self.core.api_client)
        self.pod_manager = PodManager(self.core)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise _api_error(exc, what) from None

    def _send(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call a writing API method and discard the answer (read fully, connection returned)."""
        _drain(self._call(what, fn, *args, _preload_content=False, **kwargs))

    def _read(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Return the decoded object, or None on 404."""
        try:
            data: dict[str, Any] = _decode(self._call(what, fn, *args, _preload_content=False, **kwargs))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return data

    def _list(
        self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[list[dict[str, Any]], str]:
        """Return a list call's items and its resourceVersion (the start of a watch)."""
        data = self._read(what, fn, *args, **kwargs) or {}
        return list(data.get("items") or []), str((data.get("metadata") or {}).get("resourceVersion", ""))

    def _delete(self, what: str, fn: Callable[..., Any], name: str, **kwargs: Any) -> bool:
        """Delete object ``name``; return False when it was already gone (404)."""
        try:
            self._send(f"{what} {name}", fn, name, self.namespace, **kwargs)
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- nodes -------------------------------------------------------------------------------
    def list_nodes(self, label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        return self._list("list nodes", self.core.list_node, label_selector=label_selector)

    # -- pods --------------------------------------------------------------------------------
    def create_pod(self, body: dict[str, Any]) -> None:
        """Create a Pod (not through ``PodManager.create_pod``: it logs the whole spec, env and secret
        included, and retries 409s)."""
        self._send(
            f"create pod {body['metadata']['name']}", self.core.create_namespaced_pod, self.namespace, body
        )

    def read_pod(self, name: str) -> dict[str, Any] | None:
        return self._read(f"read pod {name}", self.core.read_namespaced_pod, name, self.namespace)

    def list_pods(self, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        return self._list(
            "list pods", self.core.list_namespaced_pod, self.namespace, label_selector=label_selector
        )

    def delete_pod(self, name: str, grace_seconds: int) -> bool:
        """Delete a pod with a grace period; return False when it was already gone."""
        return self._delete(
            "delete pod", self.core.delete_namespaced_pod, name, grace_period_seconds=grace_seconds
        )

    def pod_events(self, name: str) -> list[dict[str, Any]]:
        """Return the events about pod ``name``, oldest first (read through the provider's PodManager)."""
        ref = SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=self.namespace))
        try:
            events = self.pod_manager.read_pod_events(ref)
        except ApiException as exc:
            raise _api_error(exc, f"list events of {name}") from None
        items = self.core.api_client.sanitize_for_serialization(events.items or [])
        return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    def pod_log(
        self, name: str, container: str, *, tail_lines: int | None = None, previous: bool = False
    ) -> str:
        """Return a container's log as text (decoded here: the 36.x client mangles it otherwise)."""
        kwargs: dict[str, Any] = {"container": container, "_preload_content": False}
        if tail_lines:
            kwargs["tail_lines"] = tail_lines
        if previous:
            kwargs["previous"] = True
        resp = self._call(
            f"read log of {name}/{container}",
            self.core.read_namespaced_pod_log,
            name,
            self.namespace,
            **kwargs,
        )
        try:
            return bytes(resp.data).decode("utf-8", errors="replace")
        finally:
            resp.release_conn()

    # -- services ----------------------------------------------------------------------------
    def create_service(self, body: dict[str, Any]) -> None:
        self._send(
            f"create service {body['metadata']['name']}",
            self.core.create_namespaced_service,
            self.namespace,
            body,
        )

    def list_services(self, label_selector: str) -> list[dict[str, Any]]:
        items, _ = self._list(
            "list services", self.core.list_namespaced_service, self.namespace, label_selector=label_selector
        )
        return items

    def delete_service(self, name: str) -> bool:
        return self._delete("delete service", self.core.delete_namespaced_service, name)

    # -- config maps -------------------------------------------------------------------------
    def read_config_map(self, name: str) -> dict[str, Any] | None:
        return self._read(
            f"read configmap {name}", self.core.read_namespaced_config_map, name, self.namespace
        )

    def create_config_map(self, body: dict[str, Any]) -> None:
        """Create a ConfigMap; raise :class:`KubeConflict` when it exists already."""
        self._send(
            f"create configmap {body['metadata']['name']}",
            self.core.create_namespaced_config_map,
            self.namespace,
            body,
        )

    def replace_config_map(self, body: dict[str, Any]) -> None:
        """Replace a ConfigMap; raise :class:`KubeConflict` when its resourceVersion is stale."""
        name = body["metadata"]["name"]
        self._send(
            f"replace configmap {name}",
            self.core.replace_namespaced_config_map,
            name,
            self.namespace,
            body,
        )

    def list_config_maps(self, label_selector: str) -> list[dict[str, Any]]:
        items, _ = self._list(
            "list configmaps",
            self.core.list_namespaced_config_map,
            self.namespace,
            label_selector=label_selector,
        )
        return items

    def delete_config_map(self, name: str) -> bool:
        return self._delete("delete configmap", self.core.delete_namespaced_config_map, name)

    # -- secrets -----------------------------------------------------------------------------
    def create_secret(self, body: dict[str, Any]) -> None:
        """Create a Secret (never logged: the body holds the secret)."""
        self._send(
            f"create secret {body['metadata']['name']}",
            self.core.create_namespaced_secret,
            self.namespace,
            body,
        )

    def read_secret(self, name: str) -> dict[str, Any] | None:
        return self._read(f"read secret {name}", self.core.read_namespaced_secret, name, self.namespace)

    def list_secrets(self, label_selector: str) -> list[dict[str, Any]]:
        items, _ = self._list(
            "list secrets", self.core.list_namespaced_secret, self.namespace, label_selector=label_selector
        )
        return items

    def delete_secret(self, name: str) -> bool:
        return self._delete("delete secret", self.core.delete_namespaced_secret, name)

    # -- network policies --------------------------------------------------------------------
    def create_network_policy(self, body: dict[str, Any]) -> None:
        self._send(
            f"create networkpolicy {body['metadata']['name']}",
            self.networking.create_namespaced_network_policy,
            self.namespace,
            body,
        )

    def list_network_policies(self, label_selector: str) -> list[dict[str, Any]]:
        items, _ = self._list(
            "list networkpolicies",
            self.networking.list_namespaced_network_policy,
            self.namespace,
            label_selector=label_selector,
        )
        return items

    def delete_network_policy(self, name: str) -> bool:
        return self._delete("delete networkpolicy", self.networking.delete_namespaced_network_policy, name)

    # -- metrics -----------------------------------------------------------------------------
    def pod_metrics(self, name: str) -> dict[str, Any] | None:
        """Return the PodMetrics of ``name`` in this namespace, or None when it has none (yet)."""
        try:
            data: dict[str, Any] = self.custom.get_namespaced_custom_object(
                METRICS_GROUP, METRICS_VERSION, self.namespace, "pods", name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc, f"read metrics of pod {name}") from None
        return data

    def metrics_api_available(self) -> bool:
        """Tell whether the cluster serves ``metrics.k8s.io/v1beta1`` (metrics-server installed)."""
        try:
            resp = self.custom.api_client.call_api(
                f"/apis/{METRICS_GROUP}/{METRICS_VERSION}",
                "GET",
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
            _drain(resp[0])
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _api_error(exc, "discover the metrics API") from None
        return True

    # -- watches -----------------------------------------------------------------------------
    def watch_nodes(self, label_selector: str, resource_version: str, timeout_seconds: int) -> WatchStream:
        return WatchStream(
            lambda: self.core.list_node(
                label_selector=label_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_watch_bookmarks=True,
                watch=True,
                _preload_content=False,
                _request_timeout=timeout_seconds + REQUEST_TIMEOUT,
            )
        )

    def watch_pods(self, label_selector: str, resource_version: str, timeout_seconds: int) -> WatchStream:
        return WatchStream(
            lambda: self.core.list_namespaced_pod(
                self.namespace,
                label_selector=label_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_watch_bookmarks=True,
                watch=True,
                _preload_content=False,
                _request_timeout=timeout_seconds + REQUEST_TIMEOUT,
            )
        )

    def close(self) -> None:
        """Release the connection pool of the hook's API client."""
        try:
            self.hook.api_client.close()
        except Exception:  # closing twice or a pool already torn down is harmless
            return
