"""Answer API requests: routing, CRUD semantics, subresources, discovery and metrics.

Transport-free: :meth:`Api.handle` turns a parsed request into a :class:`Reply` (JSON) or a
:class:`StreamReply` (watch, followed logs) that the HTTP server writes out.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator import objects as ob
from tests.k8s_emulator.admission import admit_pod
from tests.k8s_emulator.groups import SERVED_GROUPS, group_docs, route_group
from tests.k8s_emulator.metrics import cpu_quantity, memory_quantity
from tests.k8s_emulator.objects import RESOURCES, ApiError, bad_request, not_found, parse_time, rfc3339
from tests.k8s_emulator.patching import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.k8s_emulator.selectors import (
    SelectorError,
    match_fields,
    match_labels,
    parse_field_selector,
    parse_label_selector,
)
from tests.k8s_emulator.streams import run_logs, run_watch, with_kind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.k8s_emulator.emulator import K8sEmulator

METRICS_GROUP = "metrics.k8s.io"
METRICS_VERSION = "v1beta1"
_TRUE = ("true", "1", "True", "TRUE")


@dataclass
class Request:
    """A parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str = ""
    body: bytes = b""


@dataclass
class Reply:
    """A complete JSON (or text) response."""

    code: int
    body: Any
    content_type: str = "application/json"


@dataclass
class StreamReply:
    """A chunked response produced by ``produce(write, alive)``."""

    content_type: str
    produce: Callable[[Callable[[bytes], None], Callable[[], bool]], None]
    code: int = 200


@dataclass
class Target:
    """What a resource URL names."""

    resource: str
    namespace: str  # "" for cluster-scoped resources and for all-namespace lists
    name: str = ""
    sub: str = ""
    all_namespaces: bool = False
    watch: bool = False
    extra: list[str] = field(default_factory=list)


def _strip_list_item(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class Api:
    """The request logic of the emulated API server."""

    def __init__(self, emulator: K8sEmulator) -> None:
        self.em = emulator
        self.store = emulator.store
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        self._received_lock = threading.Lock()
        self._watches = 0
        self._watches_lock = threading.Lock()
        self.watch_ends: list[str] = []
        """Who ended each finished watch: ``"client"`` (it left) or ``"server"`` (timeout, 410, closing)."""
        self._next_cluster_ip = 1
        self._next_node_port = 30000

    # -- entry point ------------------------------------------------------------------------
    def handle(self, req: Request) -> Reply | StreamReply:
        """Answer one request; API errors become Status replies."""
        try:
            return self._route(req)
        except ApiError as exc:
            return Reply(exc.code, exc.status())
        except (SelectorError, PatchError) as exc:
            return Reply(400, bad_request(str(exc)).status())

    def _route(self, req: Request) -> Reply | StreamReply:
        parts = [p for p in req.path.split("/") if p]
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return Reply(200, "ok", "text/plain")
        if parts == ["version"]:
            return Reply(200, self._version())
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            return self._core(req, parts[1:])
        return self._apis(req, parts[1:])

    # -- discovery --------------------------------------------------------------------------
    def _version(self) -> dict[str, Any]:
        return {
            **ob.K8S_VERSION,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2024-12-01T00:00:00Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _core_resources(self) -> dict[str, Any]:
        resources = []
        for res in (r for r in RESOURCES.values() if r.group_version == "v1"):
            resources.append(
                {
                    "name": res.name,
                    "singularName": res.kind.lower(),
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": list(res.verbs),
                }
            )
            for sub in ob.SUBRESOURCES.get(res.name, ()):
                verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
                resources.append(
                    {
                        "name": f"{res.name}/{sub}",
                        "singularName": "",
                        "namespaced": res.namespaced,
                        "kind": res.kind,
                        "verbs": verbs,
                    }
                )
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources}

    def _core(self, req: Request, parts: list[str]) -> Reply | StreamReply:
        if not parts:
            address = f"127.0.0.1:{self.em.port}"
            return Reply(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
                },
            )
        if parts[0] != "v1":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rest = parts[1:]
        if not rest:
            return Reply(200, self._core_resources())
        target = self._target(rest)
        if RESOURCES[target.resource].group_version != "v1":  # served under /apis (groups.py)
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._resource(req, target)

    def _target(self, rest: list[str]) -> Target:
        watch = False
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and rest[2] in RESOURCES
            and RESOURCES[rest[2]].namespaced
        ):
            ns, rest = rest[1], rest[2:]
            t = Target(
                rest[0],
                ns,
                rest[1] if len(rest) > 1 else "",
                rest[2] if len(rest) > 2 else "",
                watch=watch,
                extra=rest[3:],
            )
        else:
            if not rest or rest[0] not in RESOURCES:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            res = RESOURCES[rest[0]]
            t = Target(
                rest[0],
                "",
                rest[1] if len(rest) > 1 else "",
                rest[2] if len(rest) > 2 else "",
                watch=watch,
                extra=rest[3:],
            )
            if res.namespaced:
                if t.name:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                t.all_namespaces = True
        if t.extra or (t.sub and t.sub not in ob.SUBRESOURCES.get(t.resource, ()) and t.sub != "finalize"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return t

    # -- generic resource handling -------------------------------------------------------------
    def _resource(self, req: Request, t: Target) -> Reply | StreamReply:
        m = req.method
        if not t.name:
            if m == "GET":
                if t.watch or req.query.get("watch") in _TRUE:
                    return self._watch(req, t)
                return Reply(200, self._list(req, t))
            if m == "POST" and not t.all_namespaces:
                return self._create(req, t)
            if m == "DELETE" and not t.all_namespaces:
                return Reply(200, self._delete_collection(req, t))
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        if t.watch:
            req.query["fieldSelector"] = f"metadata.name={t.name}"
            return self._watch(req, Target(t.resource, t.namespace))
        if t.sub == "log":
            if m != "GET":
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            return self._logs(req, t)
        if m == "GET":
            return Reply(200, with_kind(t.resource, self.store.get(t.resource, t.namespace, t.name)))
        if m == "PUT":
            return Reply(200, with_kind(t.resource, self._update(req, t, self._body(req))))
        if m == "PATCH":
            return Reply(200, with_kind(t.resource, self._patch(req, t)))
        if m == "DELETE":
            return Reply(200, self._delete(req, t))
        raise ApiError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )

    def _body(self, req: Request) -> Any:
        try:
            return json.loads(req.body or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding request body: {exc}") from exc

    def _object_body(self, req: Request, t: Target) -> dict[str, Any]:
        body = self._body(req)
        if not isinstance(body, dict):
            raise bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json"
            )
        kind = RESOURCES[t.resource].kind
        if body.get("kind") not in (None, "", kind):
            raise bad_request(
                f"the kind in the data ({body.get('kind')}) does not match the expected kind ({kind})"
            )
        version = RESOURCES[t.resource].group_version
        if body.get("apiVersion") not in (None, "", version):
            raise bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version ({version})"
            )
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        ns = (meta or {}).get("namespace")
        if RESOURCES[t.resource].namespaced and ns and ns != t.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        return body

    def _record(self, verb: str, resource: str, body: dict[str, Any]) -> None:
        with self._received_lock:
            self.received.append((verb, resource, copy.deepcopy(body)))

    def _matcher(self, req: Request) -> Callable[[dict[str, Any]], bool]:
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        return lambda obj: (
            match_labels(labels, (obj.get("metadata") or {}).get("labels")) and match_fields(fields, obj)
        )

    def _list(self, req: Request, t: Target) -> dict[str, Any]:
        match = self._matcher(req)
        rv_match = req.query.get("resourceVersionMatch", "")
        requested = req.query.get("resourceVersion", "")
        if rv_match == "Exact" and requested and int(requested) < self.store.compacted:
            raise ApiError(
                410, "Expired", f"too old resource version: {requested} ({self.store.compacted + 1})"
            )
        namespace = None if t.all_namespaces or not RESOURCES[t.resource].namespaced else t.namespace
        items, rv = self.store.list(
            t.resource, namespace if RESOURCES[t.resource].namespaced else None, match
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        limit = int(req.query.get("limit") or 0)
        start = 0
        if req.query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(req.query["continue"].encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request("continue key is not valid") from exc
        items = items[start:]
        if limit and len(items) > limit:
            meta["remainingItemCount"] = len(items) - limit
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": start + limit, "rv": rv}).encode()
            ).decode()
            items = items[:limit]
        return {
            "kind": RESOURCES[t.resource].kind + "List",
            "apiVersion": RESOURCES[t.resource].group_version,
            "metadata": meta,
            "items": [_strip_list_item(o) for o in items],
        }

    def _watch(self, req: Request, t: Target) -> StreamReply:
        match = self._matcher(req)
        namespace = None if t.all_namespaces or not RESOURCES[t.resource].namespaced else t.namespace
        timeout = float(req.query["timeoutSeconds"]) if req.query.get("timeoutSeconds") else None
        rv = req.query.get("resourceVersion", "")
        interval = self.em.bookmark_interval
        bookmarks = req.query.get("allowWatchBookmarks") in _TRUE and interval is not None
        if rv and not rv.isdigit():
            raise bad_request(f'invalid resource version "{rv}"')

        def produce(write: Callable[[bytes], None], alive: Callable[[], bool]) -> None:
            left = False

            def still_there() -> bool:
                nonlocal left
                left = not alive()
                return not left

            with self._counting_watch(lambda: "client" if left else "server"):
                run_watch(
                    self.store,
                    t.resource,
                    namespace,
                    match,
                    rv,
                    timeout,
                    bookmarks,
                    write,
                    still_there,
                    interval or 1.0,
                )

        return StreamReply("application/json", produce)

    @contextlib.contextmanager
    def _counting_watch(self, ender: Callable[[], str]) -> Iterator[None]:
        """Count a watch while it is served, and record who ended it (tests check clients close theirs).

        :param ender: says, once the watch is over, who ended it: ``"client"`` or ``"server"``
        """
        with self._watches_lock:
            self._watches += 1
        try:
            yield
        finally:
            with self._watches_lock:
                self._watches -= 1
                self.watch_ends.append(ender())

    def open_watches(self) -> int:
        """Return how many watch streams are being served."""
        with self._watches_lock:
            return self._watches

    # -- create ---------------------------------------------------------------------------
    def _create(self, req: Request, t: Target) -> Reply:
        body = self._object_body(req, t)
        self._record("create", t.resource, body)
        obj = copy.deepcopy(body)
        res = RESOURCES[t.resource]
        obj["kind"], obj["apiVersion"] = res.kind, res.group_version
        meta = obj.setdefault("metadata", {})
        for key in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            meta.pop(key, None)
        check = copy.deepcopy(obj)
        if not meta.get("name") and meta.get("generateName"):
            check["metadata"]["name"] = meta["generateName"] + "x2b4z"
        ob.validate(res, check)
        if t.resource == "pods":
            admit_pod(self.store.find("namespaces", "", t.namespace), check)
        dry_run = bool(req.query.get("dryRun"))
        if t.resource == "pods":
            ob.default_pod(obj)
            if not obj["spec"].get("nodeName"):
                obj["spec"].pop("nodeName", None)
        elif t.resource == "services":
            ob.default_service(obj, self._cluster_ip(), self._node_ports(obj))
        elif t.resource == "namespaces":
            ob.default_namespace(obj)
        elif t.resource == "secrets":
            ob.default_secret(obj)
        elif t.resource == "nodes":
            obj = self.em.complete_node(obj)
        created = self.store.create(t.resource, t.namespace if res.namespaced else "", obj, dry_run=dry_run)
        if t.resource == "pods" and not dry_run:
            self.em.kubelet.pod_created(created)
        return Reply(201, with_kind(t.resource, created))

    def _cluster_ip(self) -> str:
        n = self._next_cluster_ip
        self._next_cluster_ip += 1
        return f"10.96.{n // 250}.{n % 250 + 1}"

    def _node_ports(self, obj: dict[str, Any]) -> list[int]:
        spec = obj.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return []
        out = []
        for _ in spec.get("ports") or []:
            out.append(self._next_node_port)
            self._next_node_port = 30000 + (self._next_node_port - 30000 + 1) % 2768
        return out

    # -- update / patch ---------------------------------------------------------------------
    def _merge_update(self, t: Target, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Return the stored form of an update: kept identity, status rules, immutable fields."""
        res = RESOURCES[t.resource]
        if not isinstance(new, dict):
            raise bad_request("the body of the request was in an unknown format")
        new = copy.deepcopy(new)
        new["kind"], new["apiVersion"] = res.kind, res.group_version
        meta = new.setdefault("metadata", {})
        if meta.get("name") not in (None, "", t.name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})"
            )
        meta["name"] = t.name
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generateName",
        ):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
            else:
                meta.pop(key, None)
        if res.namespaced:
            meta["namespace"] = t.namespace
        if t.sub == "status":
            out = copy.deepcopy(current)
            out["status"] = new.get("status", {})
            return out
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        ob.validate(res, new)
        if t.resource == "pods":
            self._check_pod_update(current, new)
        elif t.resource == "services":
            spec = new.setdefault("spec", {})
            cur = current.get("spec") or {}
            if spec.get("clusterIP") and spec["clusterIP"] != cur.get("clusterIP"):
                raise ob.invalid(
                    "Service",
                    t.name,
                    [
                        (
                            "spec.clusterIP",
                            "FieldValueInvalid",
                            f'Invalid value: "{spec["clusterIP"]}": field is immutable',
                        )
                    ],
                )
            known = {p.get("port"): p.get("nodePort") for p in cur.get("ports") or []}
            for p in spec.get("ports") or []:
                if not p.get("nodePort") and known.get(p.get("port")):
                    p["nodePort"] = known[p.get("port")]
            ob.default_service(new, cur.get("clusterIP", ""), self._node_ports(new))
            new["status"] = copy.deepcopy(current.get("status", {"loadBalancer": {}}))
        elif t.resource == "namespaces":
            new["spec"] = copy.deepcopy(current.get("spec"))
        elif t.resource == "secrets":
            ob.default_secret(new)
        return new

    def _check_pod_update(self, current: dict[str, Any], new: dict[str, Any]) -> None:
        probe = copy.deepcopy(new)
        ob.default_pod(probe)
        new["spec"] = probe["spec"]
        if not new["spec"].get("nodeName") and current["spec"].get("nodeName"):
            new["spec"]["nodeName"] = current["spec"]["nodeName"]
        new["status"] = copy.deepcopy(current.get("status"))

        def comparable(spec: dict[str, Any]) -> dict[str, Any]:
            spec = copy.deepcopy(spec)
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                c.pop("image", None)
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
            return spec

        if comparable(current["spec"]) != comparable(new["spec"]):
            raise ob.invalid(
                "Pod",
                current["metadata"]["name"],
                [
                    (
                        "spec",
                        "FieldValueForbidden",
                        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    )
                ],
            )

    def _update(self, req: Request, t: Target, body: Any) -> dict[str, Any]:
        if isinstance(body, dict):
            self._record("replace", t.resource, body)
        expected = (
            str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")
            if isinstance(body, dict)
            else ""
        )
        return self.store.modify(
            t.resource,
            t.namespace,
            t.name,
            lambda cur: self._merge_update(t, cur, body),
            expected_rv=expected or None,
        )

    def _patch(self, req: Request, t: Target) -> dict[str, Any]:
        patch = self._body(req)
        kind = req.content_type.split(";")[0].strip().lower()
        if kind == "application/json-patch+json":
            apply: Callable[[dict[str, Any]], Any] = lambda cur: json_patch(cur, patch)  # noqa: E731
        elif kind == "application/merge-patch+json":
            apply = lambda cur: merge_patch(cur, patch)  # noqa: E731
        elif kind == "application/strategic-merge-patch+json":
            apply = lambda cur: strategic_merge_patch(cur, patch)  # noqa: E731
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "{kind}")',
            )
        if kind != "application/json-patch+json" and not isinstance(patch, dict):
            raise bad_request("the body of the request was in an unknown format")
        expected = ""
        if isinstance(patch, dict):
            expected = str((patch.get("metadata") or {}).get("resourceVersion") or "")

        def change(cur: dict[str, Any]) -> dict[str, Any]:
            patched = apply(cur)
            if not isinstance(patched, dict):
                raise bad_request("the patch does not produce an object")
            return self._merge_update(t, cur, patched)

        return self.store.modify(t.resource, t.namespace, t.name, change, expected_rv=expected or None)

    # -- delete -----------------------------------------------------------------------------
    def _delete_options(self, req: Request) -> dict[str, Any]:
        body = self._body(req) if req.body else None
        options = dict(body) if isinstance(body, dict) else {}
        if "gracePeriodSeconds" in req.query:
            options["gracePeriodSeconds"] = int(req.query["gracePeriodSeconds"])
        return options

    def _delete(self, req: Request, t: Target) -> dict[str, Any]:
        options = self._delete_options(req)
        current = self.store.get(t.resource, t.namespace, t.name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
            raise ob.conflict(
                t.resource,
                t.name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {current['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ob.conflict(
                t.resource,
                t.name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {current['metadata']['resourceVersion']}",
            )
        if req.query.get("dryRun"):
            return with_kind(t.resource, current)
        grace = options.get("gracePeriodSeconds")
        if t.resource == "pods":
            result = self.em.kubelet.delete_pod(t.namespace, t.name, None if grace is None else int(grace))
            self.finalize_namespace(t.namespace)
            return with_kind(t.resource, result)
        if t.resource == "namespaces":
            return with_kind(t.resource, self.delete_namespace(t.name))
        if t.resource == "nodes":
            removed = self.em.remove_node(t.name)
            return with_kind(t.resource, removed)
        removed = self.store.remove(t.resource, t.namespace, t.name)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": t.name, "kind": t.resource, "uid": removed["metadata"]["uid"]},
        }

    def _delete_collection(self, req: Request, t: Target) -> dict[str, Any]:
        listing = self._list(req, t)
        for item in listing["items"]:
            sub = Target(t.resource, t.namespace, item["metadata"]["name"])
            try:
                self._delete(Request("DELETE", req.path, dict(req.query), req.content_type, req.body), sub)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return listing

    def delete_namespace(self, name: str) -> dict[str, Any]:
        """Start deleting a namespace: mark it Terminating, delete its content, then remove it."""

        def mark(obj: dict[str, Any]) -> None:
            obj["metadata"].setdefault("deletionTimestamp", rfc3339(time.time()))
            obj["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            obj["status"] = {"phase": "Terminating"}

        marked = self.store.modify("namespaces", "", name, mark)
        for resource, res in RESOURCES.items():
            if not res.namespaced or resource == "pods":
                continue
            for item in self.store.list(resource, name)[0]:
                with contextlib.suppress(ApiError):
                    self.store.remove(resource, name, item["metadata"]["name"])
        for pod in self.store.list("pods", name)[0]:
            with contextlib.suppress(ApiError):
                self.em.kubelet.delete_pod(name, pod["metadata"]["name"], None)
        self.finalize_namespace(name)
        return marked

    def finalize_namespace(self, name: str) -> None:
        """Remove a Terminating namespace once no pods are left in it."""
        with self.store.cond:
            ns = self.store.find("namespaces", "", name)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                return
            if self.store.list("pods", name)[0]:
                return
            for resource, res in RESOURCES.items():
                if res.namespaced:
                    for item in self.store.list(resource, name)[0]:
                        self.store.remove(resource, name, item["metadata"]["name"])
            self.store.remove("namespaces", "", name)

    # -- logs -------------------------------------------------------------------------------
    def _logs(self, req: Request, t: Target) -> Reply | StreamReply:
        pod = self.store.get("pods", t.namespace, t.name)
        worker = self.em.kubelet.worker(t.namespace, t.name)
        c = worker.container(req.query.get("container"))
        previous = req.query.get("previous") in _TRUE
        buffer = c.prev_logs if previous else c.logs
        if buffer is None:
            if previous:
                raise bad_request(f'previous terminated container "{c.name}" in pod "{t.name}" not found')
            waiting = c.state.get("waiting", {}).get("reason", "ContainerCreating")
            raise bad_request(
                f'container "{c.name}" in pod "{pod["metadata"]["name"]}" is waiting to start: {waiting}'
            )
        since: float | None = None
        if req.query.get("sinceSeconds"):
            since = time.time() - int(req.query["sinceSeconds"])
        elif req.query.get("sinceTime"):
            since = parse_time(req.query["sinceTime"])
        tail = int(req.query["tailLines"]) if req.query.get("tailLines") else None
        limit = int(req.query["limitBytes"]) if req.query.get("limitBytes") else None
        follow = req.query.get("follow") in _TRUE
        timestamps = req.query.get("timestamps") in _TRUE

        def produce(write: Callable[[bytes], None], alive: Callable[[], bool]) -> None:
            run_logs(
                buffer,
                follow=follow,
                timestamps=timestamps,
                tail=tail,
                since=since,
                limit_bytes=limit,
                write=write,
                alive=alive,
            )

        return StreamReply("text/plain", produce)

    # -- metrics.k8s.io ---------------------------------------------------------------------
    def _apis(self, req: Request, parts: list[str]) -> Reply | StreamReply:
        group = {
            "name": METRICS_GROUP,
            "versions": [{"groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}", "version": METRICS_VERSION}],
            "preferredVersion": {
                "groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                "version": METRICS_VERSION,
            },
        }
        if not parts:
            return Reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group, *group_docs()]})
        if parts[0] in SERVED_GROUPS:
            return route_group(self, req, parts)
        if parts[0] != METRICS_GROUP:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(parts) == 1:
            return Reply(200, {"kind": "APIGroup", "apiVersion": "v1", **group})
        if parts[1] != METRICS_VERSION:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rest = parts[2:]
        if not rest:
            return Reply(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                    "resources": [
                        {
                            "name": "nodes",
                            "singularName": "",
                            "namespaced": False,
                            "kind": "NodeMetrics",
                            "verbs": ["get", "list"],
                        },
                        {
                            "name": "pods",
                            "singularName": "",
                            "namespaced": True,
                            "kind": "PodMetrics",
                            "verbs": ["get", "list"],
                        },
                    ],
                },
            )
        if req.method != "GET":
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if rest[0] == "pods" and len(rest) <= 2:
            return self._pod_metrics(req, namespace, rest[1] if len(rest) == 2 else "")
        if rest[0] == "nodes" and len(rest) <= 2 and namespace is None:
            return self._node_metrics(req, rest[1] if len(rest) == 2 else "")
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _pod_usage(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        meta = pod["metadata"]
        try:
            worker = self.em.kubelet.worker(meta["namespace"], meta["name"])
        except ApiError:
            return None
        containers = []
        for c in worker.mains:
            if c.proc is None or "running" not in c.state:
                continue
            usage = self.em.sampler.usage(c.proc.pid() or c.proc.shim_pid)
            if usage is not None:
                containers.append(
                    {
                        "name": c.name,
                        "usage": {"cpu": cpu_quantity(usage[0]), "memory": memory_quantity(usage[1])},
                    }
                )
        if not containers:
            return None
        return {
            "kind": "PodMetrics",
            "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": meta.get("labels") or {},
                "creationTimestamp": rfc3339(time.time()),
            },
            "timestamp": rfc3339(time.time()),
            "window": "10s",
            "containers": containers,
        }

    def _pod_metrics(self, req: Request, namespace: str | None, name: str) -> Reply:
        if name:
            pod = self.store.find("pods", namespace or "", name)
            usage = self._pod_usage(pod) if pod else None
            if usage is None:
                raise not_found("podmetrics", name, METRICS_GROUP)
            return Reply(200, usage)
        match = self._matcher(req)
        items = [
            u for p in self.store.list("pods", namespace, match)[0] if (u := self._pod_usage(p)) is not None
        ]
        return Reply(
            200,
            {
                "kind": "PodMetricsList",
                "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                "metadata": {},
                "items": items,
            },
        )

    def _node_metrics(self, req: Request, name: str) -> Reply:
        nodes = self.store.list("nodes", None, self._matcher(req))[0]
        items = []
        for node in nodes:
            node_name = node["metadata"]["name"]
            if name and node_name != name:
                continue
            cpu = mem = 0
            for w in self.em.kubelet.workers_on(node_name):
                for c in w.mains:
                    if (
                        c.proc is not None
                        and "running" in c.state
                        and (u := self.em.sampler.usage(c.proc.pid() or c.proc.shim_pid))
                    ):
                        cpu, mem = cpu + u[0], mem + u[1]
            items.append(
                {
                    "kind": "NodeMetrics",
                    "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                    "metadata": {
                        "name": node_name,
                        "labels": node["metadata"].get("labels") or {},
                        "creationTimestamp": rfc3339(time.time()),
                    },
                    "timestamp": rfc3339(time.time()),
                    "window": "10s",
                    "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)},
                }
            )
        if name:
            if not items:
                raise not_found("nodemetrics", name, METRICS_GROUP)
            return Reply(200, items[0])
        return Reply(
            200,
            {
                "kind": "NodeMetricsList",
                "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                "metadata": {},
                "items": items,
            },
        )
