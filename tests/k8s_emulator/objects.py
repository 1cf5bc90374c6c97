"""Describe the served resources, build Status errors, validate and complete objects (pure)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

K8S_VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-emulator"}


@dataclass(frozen=True)
class Resource:
    """One served resource type."""

    name: str  # plural, as in the URL
    kind: str
    namespaced: bool
    name_rule: str = "subdomain"  # "subdomain", "label" (DNS-1123) or "label1035"
    group_version: str = "v1"
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("pods", "Pod", True),
        Resource("services", "Service", True, "label1035"),
        Resource("configmaps", "ConfigMap", True),
        Resource("secrets", "Secret", True),
        Resource("events", "Event", True),
        Resource("nodes", "Node", False),
        Resource("namespaces", "Namespace", False, "label"),
        Resource("persistentvolumeclaims", "PersistentVolumeClaim", True),  # claims: volumes.py
        Resource("persistentvolumes", "PersistentVolume", False),
        Resource("networkpolicies", "NetworkPolicy", True, group_version="networking.k8s.io/v1"),
    )
}
SUBRESOURCES = {
    "pods": ("status", "log"),
    "services": ("status",),
    "nodes": ("status",),
    "namespaces": ("status",),
}


class ApiError(Exception):
    """An error the API server answers with a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = {}
        if name:
            self.details["name"] = name
        if group:
            self.details["group"] = group
        if kind:
            self.details["kind"] = kind
        if causes:
            self.details["causes"] = causes

    def status(self) -> dict[str, Any]:
        """Return the error as a ``Status`` object."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    """Return the 404 NotFound error for ``resource`` ``name``."""
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', kind=resource, name=name, group=group)


def already_exists(resource: str, name: str) -> ApiError:
    """Return the 409 AlreadyExists error."""
    return ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists', kind=resource, name=name)


def conflict(resource: str, name: str, why: str = "") -> ApiError:
    """Return the 409 Conflict error of a failed optimistic-concurrency check."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        kind=resource,
        name=name,
    )


def bad_request(message: str) -> ApiError:
    """Return a 400 BadRequest error."""
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """Return the 422 Invalid error; ``causes`` holds ``(field, reason, message)`` triples."""
    text = ", ".join(f"{field}: {msg}" for field, _reason, msg in causes)
    shown = f"[{text}]" if len(causes) > 1 else text
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {shown}',
        kind=kind,
        name=name,
        causes=[{"reason": r, "message": m, "field": f} for f, r, m in causes],
    )


def rfc3339(when: float) -> str:
    """Format a Unix time like Kubernetes timestamps (seconds precision)."""
    return dt.datetime.fromtimestamp(int(when), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(when: float) -> str:
    """Format a Unix time with microseconds (MicroTime)."""
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(when: float) -> str:
    """Format a Unix time with nanoseconds, as the kubelet prefixes log lines."""
    base = dt.datetime.fromtimestamp(int(when), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    nanos = int(round((when - int(when)) * 1e9))
    return f"{base}.{min(nanos, 999_999_999):09d}Z"


def parse_time(text: str) -> float:
    """Parse an RFC 3339 timestamp into a Unix time."""
    value = text.strip().replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", value)
    if m and m.group(2):  # Python wants at most 6 fractional digits
        value = m.group(1) + m.group(2)[:7] + m.group(3)
    return dt.datetime.fromisoformat(value).timestamp()


_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def name_problem(name: str, rule: str) -> str | None:
    """Return why ``name`` is not a valid object name under ``rule``, or None."""
    if rule == "subdomain":
        if len(name) > 253:
            return "must be no more than 253 characters"
        if not _SUBDOMAIN_RE.match(name):
            return (
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character"
            )
        return None
    if len(name) > 63:
        return "must be no more than 63 characters"
    if rule == "label1035" and not _LABEL1035_RE.match(name):
        return (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character"
        )
    if rule == "label" and not _LABEL_RE.match(name):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character"
        )
    return None


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and name_problem(prefix, "subdomain"):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME_RE.match(name):
        return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    return None


def validate(resource: Resource, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid when ``obj`` misses required fields or carries bad names/labels."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(
            ("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
        )
    elif problem := name_problem(name, resource.name_rule):
        causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {problem}'))
    for key, value in (meta.get("labels") or {}).items():
        if problem := _label_key_problem(str(key)):
            causes.append(("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}": {problem}'))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE_RE.match(value):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f"Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    check = _VALIDATORS.get(resource.name)
    if check:
        causes.extend(check(obj))
    if causes:
        raise invalid(resource.kind, name, causes)


def _containers_problems(spec: dict[str, Any], field: str, required: bool) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    containers = spec.get(field)
    if containers is None or containers == []:
        if required:
            out.append((f"spec.{field}", "FieldValueRequired", "Required value"))
        return out
    if not isinstance(containers, list):
        return [(f"spec.{field}", "FieldValueInvalid", "Invalid value: must be a list")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        path = f"spec.{field}[{i}]"
        cname = str(c.get("name") or "")
        if not cname:
            out.append((f"{path}.name", "FieldValueRequired", "Required value"))
        elif name_problem(cname, "label"):
            out.append(
                (
                    f"{path}.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{cname}": {name_problem(cname, "label")}',
                )
            )
        elif cname in seen:
            out.append((f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{cname}"'))
        seen.add(cname)
        if not str(c.get("image") or "").strip():
            out.append((f"{path}.image", "FieldValueRequired", "Required value"))
        for j, env in enumerate(c.get("env") or []):
            env_name = str(env.get("name") or "")
            if not env_name:
                out.append((f"{path}.env[{j}].name", "FieldValueRequired", "Required value"))
            elif not _ENV_NAME_RE.match(env_name):
                out.append(
                    (
                        f"{path}.env[{j}].name",
                        "FieldValueInvalid",
                        f"Invalid value: \"{env_name}\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
                    )
                )
        for j, port in enumerate(c.get("ports") or []):
            number = port.get("containerPort")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                out.append(
                    (
                        f"{path}.ports[{j}].containerPort",
                        "FieldValueInvalid",
                        f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                    )
                )
    return out


def _pod_problems(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec.containers", "FieldValueRequired", "Required value")]
    out = _containers_problems(spec, "containers", True) + _containers_problems(spec, "initContainers", False)
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        out.append(
            (
                "spec.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
            )
        )
    return out


def _service_problems(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    spec = obj.get("spec") or {}
    out: list[tuple[str, str, str]] = []
    kind = spec.get("type", "ClusterIP")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        out.append(("spec.type", "FieldValueNotSupported", f'Unsupported value: "{kind}"'))
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        out.append(("spec.ports", "FieldValueRequired", "Required value"))
    for i, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            out.append(
                (
                    f"spec.ports[{i}].port",
                    "FieldValueInvalid",
                    f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                )
            )
        if len(ports) > 1 and not port.get("name"):
            out.append((f"spec.ports[{i}].name", "FieldValueRequired", "Required value"))
    return out


def _data_problems(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for section in ("data", "binaryData", "stringData"):
        for key in obj.get(section) or {}:
            if not _CONFIG_KEY_RE.match(key) or len(key) > 253:
                out.append(
                    (
                        f"{section}[{key}]",
                        "FieldValueInvalid",
                        f"Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
    return out


def _event_problems(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    involved = obj.get("involvedObject") or {}
    if not involved.get("name") and not involved.get("kind"):
        return [("involvedObject", "FieldValueRequired", "Required value")]
    return []


_VALIDATORS = {
    "pods": _pod_problems,
    "services": _service_problems,
    "configmaps": _data_problems,
    "secrets": _data_problems,
    "events": _event_problems,
}


def _image_pull_policy(image: str) -> str:
    ref = image.split("@", 1)[0]
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
    return "Always" if tag in ("", "latest") and "@" not in image else "IfNotPresent"


def _default_probe(probe: dict[str, Any]) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _default_container(c: dict[str, Any]) -> None:
    c.setdefault("imagePullPolicy", _image_pull_policy(str(c.get("image", ""))))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        if isinstance(c.get(key), dict):
            _default_probe(c[key])


def default_pod(obj: dict[str, Any]) -> None:
    """Fill the defaults the API server adds to a pod."""
    spec = obj.setdefault("spec", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        _default_container(c)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def default_service(obj: dict[str, Any], cluster_ip: str, node_ports: list[int]) -> None:
    """Fill the defaults of a service; ``node_ports`` supplies ports for NodePort/LoadBalancer."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = spec.get("clusterIP") or cluster_ip
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort") and node_ports:
            port["nodePort"] = node_ports.pop(0)
    obj["status"] = {"loadBalancer": {}}


def default_namespace(obj: dict[str, Any]) -> None:
    """Fill the defaults of a namespace."""
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}


def default_secret(obj: dict[str, Any]) -> None:
    """Fold ``stringData`` into base64 ``data`` and default the type."""
    import base64

    string_data = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj.setdefault("type", "Opaque")


def node_object(
    name: str, labels: dict[str, str], *, ready: bool, ip: str, boot_id: str, now: float
) -> dict[str, Any]:
    """Return a complete Node object as a kubelet would register it."""
    all_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **labels,
    }
    capacity = {
        "cpu": "2",
        "memory": "8029620Ki",
        "pods": "110",
        "ephemeral-storage": "61202244Ki",
        "hugepages-2Mi": "0",
    }
    return {
        "metadata": {
            "name": name,
            "labels": all_labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": node_conditions(ready, now),
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": boot_id.replace("-", ""),
                "systemUUID": boot_id,
                "bootID": boot_id,
                "kernelVersion": "6.1.0-emulator",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "emulator://1.0.0",
                "kubeletVersion": K8S_VERSION["gitVersion"],
                "kubeProxyVersion": K8S_VERSION["gitVersion"],
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [],
        },
    }


def node_conditions(ready: bool, now: float) -> list[dict[str, Any]]:
    """Return the node conditions for a Ready or NotReady node."""
    ts = rfc3339(now)
    out = []
    for kind, reason, message in (
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ):
        out.append(
            {
                "type": kind,
                "status": "False" if ready else "Unknown",
                "lastHeartbeatTime": ts,
                "lastTransitionTime": ts,
                "reason": reason if ready else "NodeStatusUnknown",
                "message": message if ready else "Kubelet stopped posting node status.",
            }
        )
    out.append(
        {
            "type": "Ready",
            "status": "True" if ready else "Unknown",
            "lastHeartbeatTime": ts,
            "lastTransitionTime": ts,
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
        }
    )
    return out


def node_is_ready(node: dict[str, Any]) -> bool:
    """Tell whether a node's Ready condition is True."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
