"""Per-target pods: turn an ETL's Pod into the Pod and Service that run it on one target.

Everything works on plain dicts (the JSON form of Kubernetes objects) so that the local backend,
the Kubernetes backend and the tests share one implementation and no Kubernetes client is needed.
:func:`prepare_pod` runs named steps, one per concern: name, pin, io command, labels, probe, env,
service.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.constants import IO
from airflow_ais_etl.etl.errors import ValidationError, go_quote
from airflow_ais_etl.etl.podcheck import affinity_problem, main_container
from airflow_ais_etl.etl.runtimes import RUNTIME_SERVER_COMMAND, is_runtime_image

if TYPE_CHECKING:
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = [
    "HOSTNAME_LABEL",
    "IO_SERVER_COMMAND",
    "POD_LABEL_NAME",
    "POD_LABEL_NODE",
    "POD_LABEL_TARGET",
    "PreparedPod",
    "Target",
    "io_query",
    "label_value",
    "pod_name",
    "prepare_pod",
]

IO_SERVER_COMMAND = ["sh", "-c", "/server"]
"""The reference io server in foreign images (AIStore runtime images install it as ``/server``)."""

POD_LABEL_NAME = "nvidia.com/ais-etl-name"
POD_LABEL_NODE = "nvidia.com/ais-etl-node"
POD_LABEL_TARGET = "nvidia.com/ais-etl-target"
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_PROBE_TIMEOUT = 5
DEFAULT_PROBE_PERIOD = 10

_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_LABEL = 63


@dataclass(frozen=True)
class Target:
    """Where one ETL pod runs.

    :param id: target id (the reference's SID)
    :param node: Kubernetes node name (or the local backend's node name)
    """

    id: str
    node: str


@dataclass(frozen=True)
class PreparedPod:
    """A Pod and its Service ready to create on one target.

    :param pod: the Pod dict
    :param service: the Service dict (same name as the pod)
    :param pod_name: the pod (and service) name
    :param io_command: for io://, the container's original command; None otherwise
    """

    pod: dict[str, Any]
    service: dict[str, Any]
    pod_name: str
    io_command: list[str] | None


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def pod_name(etl_name: str, target_id: str) -> str:
    """Name the pod (and service) of an ETL on a target: ``CleanName(name-target)``, made DNS-1035.

    Lower-case and ``_`` → ``-`` as the reference; any other character outside ``[a-z0-9-]`` → ``-``.
    A name that is still too long (> 63) or not a DNS-1035 label keeps a prefix and gets ``-`` + 8
    hex chars of the SHA-1 of the original, so distinct inputs stay distinct.

    :param etl_name: ETL name
    :param target_id: target id
    :return: e.g. ``md5-etl-abc-12x`` for (``md5-etl``, ``AbC_12x``)
    """
    original = f"{etl_name}-{target_id}"
    clean = re.sub(r"[^a-z0-9-]", "-", original.lower().replace("_", "-"))
    if len(clean) <= _MAX_LABEL and _DNS1035.fullmatch(clean):
        return clean
    prefix = clean if clean[:1].isalpha() else f"etl-{clean}"
    prefix = prefix[: _MAX_LABEL - 9].rstrip("-")
    return f"{prefix}-{_short_hash(original)}"


def label_value(value: str) -> str:
    """Make ``value`` a valid label value (≤ 63 chars, alphanumeric ends), keeping valid ones as-is.

    :param value: any text
    :return: the value, or a sanitised prefix plus 8 hex chars of its SHA-1
    """
    if len(value) <= _MAX_LABEL and _LABEL_VALUE.fullmatch(value):
        return value
    clean = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[: _MAX_LABEL - 9].strip("-_.")
    return f"{clean}-{_short_hash(value)}" if clean else _short_hash(value)


def _check_label_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    ok = (
        isinstance(key, str)
        and 0 < len(name) <= _MAX_LABEL
        and _LABEL_NAME.fullmatch(name) is not None
        and (not prefix or (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(prefix) is not None))
        and ("/" not in key or bool(prefix))
    )
    if not ok:
        raise ValidationError(
            f"invalid label key {go_quote(str(key))}: expecting [prefix/]name, name up to 63 chars of "
            "[A-Za-z0-9-_.] starting and ending alphanumeric, prefix a DNS subdomain"
        )


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    """Set one env var last in the list, dropping earlier entries of the same name (which it would shadow)."""
    env = [e for e in (container.get("env") or []) if not (isinstance(e, Mapping) and e.get("name") == name)]
    env.append({"name": name, "value": value})
    container["env"] = env


def prepare_pod(
    pod: Mapping[str, Any],
    msg: InitMsg,
    target: Target,
    *,
    target_url: str,
    extra_env: Mapping[str, str] | None = None,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    io_server_command: list[str] | None = None,
) -> PreparedPod:
    """Turn a (validated) Pod into the Pod and Service of this ETL on one target (reference §3.2).

    Works on a deep copy: names the pod, forces ``apiVersion: v1``, pins it to ``target.node`` with
    a required node affinity on ``kubernetes.io/hostname``, swaps the io:// command for the io
    server (remembering the original and passing it as ``AIS_ETL_IO_COMMAND`` so our runtime runs
    only that command), sets labels, readiness defaults (5 s / 10 s) and env.

    The Service is ``ClusterIP`` (the reference uses ``NodePort``): we reach pods by pod IP or
    Service from inside the cluster, and a NodePort would expose every transformer on every node.

    :param pod: the Pod dict (from :func:`~airflow_ais_etl.etl.podtemplate.code_pod_spec` or
        :func:`~airflow_ais_etl.etl.podcheck.parse_pod_spec`)
    :param msg: the validated init message (name and comm type are used)
    :param target: where the pod runs
    :param target_url: ``AIS_TARGET_URL`` for the pod (callback URL incl. secret)
    :param extra_env: more env for every container and init container (init code:
        :func:`~airflow_ais_etl.etl.podtemplate.code_env`)
    :param namespace: set ``metadata.namespace`` on both objects when given
    :param labels: extra labels for both objects (values are sanitised; ours win on conflicts)
    :param annotations: extra annotations for both objects, verbatim (they win over the spec's)
    :param io_server_command: io:// server command; default: ours for our image, else ``/server``
    :return: the prepared pod and service
    :raises ValidationError: user node affinity / pod anti-affinity, or an unusable spec
    """
    name = pod_name(msg.name, target.id)
    try:
        new_pod = _named_copy(pod, name, namespace)
        container = main_container(new_pod, msg.name)
        spec = new_pod["spec"]
        _pin_to_node(spec, target.node)
        io_command = None
        if msg.comm_type == IO:
            io_command = _swap_io_command(container, io_server_command)
        all_labels = _set_labels(new_pod["metadata"], labels, name, msg.name, target)
        _set_annotations(new_pod["metadata"], annotations)
        _default_readiness_timing(container)
        _set_pod_env(spec, container, msg, target_url=target_url, extra_env=extra_env, io_command=io_command)
        service = _service(name, all_labels, namespace, _container_port(container))
        _set_annotations(service["metadata"], annotations)
    except ValidationError as exc:
        raise exc.with_context(etl_name=msg.name, target=target.id, pod_name=name) from None
    return PreparedPod(pod=new_pod, service=service, pod_name=name, io_command=io_command)


def _named_copy(pod: Mapping[str, Any], name: str, namespace: str | None) -> dict[str, Any]:
    """Deep-copy ``pod`` as a ``v1`` Pod called ``name`` (no ``generateName``), in ``namespace``."""
    new_pod: dict[str, Any] = copy.deepcopy(dict(pod))
    metadata = new_pod.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
    metadata["name"] = name
    metadata.pop("generateName", None)
    if namespace:
        metadata["namespace"] = namespace
    new_pod["metadata"] = metadata
    new_pod["apiVersion"] = "v1"
    new_pod["kind"] = "Pod"
    return new_pod


def _pin_to_node(spec: dict[str, Any], node: str) -> None:
    """Require the target's node; a user's own node affinity would fight that, so it is refused."""
    problem = affinity_problem(spec)
    if problem:
        raise ValidationError(problem)
    affinity = dict(spec.get("affinity") or {})
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}
            ]
        }
    }
    spec["affinity"] = affinity


def _swap_io_command(container: dict[str, Any], io_server_command: list[str] | None) -> list[str]:
    """Run the io server instead of the container's command; return that command for the server."""
    original = container.get("command")
    if not original or not isinstance(original, list):
        raise ValidationError(
            "io:// requires spec.containers[0].command: the io server runs it for every object; "
            'set e.g. command: ["python", "/app/transform.py"]'
        )
    if io_server_command is None:
        image = container.get("image")
        ours = isinstance(image, str) and is_runtime_image(image)
        io_server_command = RUNTIME_SERVER_COMMAND if ours else IO_SERVER_COMMAND
    container["command"] = list(io_server_command)
    return [str(part) for part in original]


def _set_labels(
    metadata: dict[str, Any],
    labels: Mapping[str, str] | None,
    name: str,
    etl_name: str,
    target: Target,
) -> dict[str, str]:
    """Merge the spec's, the caller's and our labels (ours win); return them for the Service too."""
    all_labels = dict(metadata.get("labels") or {})
    for key, value in (labels or {}).items():
        _check_label_key(key)
        all_labels[key] = label_value(str(value))
    all_labels.update(
        {
            "app": "ais",
            POD_LABEL_NAME: name,
            POD_LABEL_NODE: label_value(target.node),
            POD_LABEL_TARGET: label_value(target.id),
            "app.kubernetes.io/name": "etl",
            "app.kubernetes.io/component": "server",
            "app.kubernetes.io/managed-by": "airflow-ais-etl",
            "app.kubernetes.io/instance": label_value(etl_name),
        }
    )
    metadata["labels"] = all_labels
    return all_labels


def _set_annotations(metadata: dict[str, Any], annotations: Mapping[str, str] | None) -> None:
    """Add the caller's annotations (e.g. the Airflow origin) to ``metadata``; none: leave it as is."""
    if annotations:
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            **{k: str(v) for k, v in annotations.items()},
        }


def _default_readiness_timing(container: dict[str, Any]) -> None:
    """Use the reference's probe timing (5 s timeout, 10 s period) when the spec sets neither."""
    probe = container.get("readinessProbe")
    if isinstance(probe, dict) and not probe.get("timeoutSeconds") and not probe.get("periodSeconds"):
        probe["timeoutSeconds"] = DEFAULT_PROBE_TIMEOUT
        probe["periodSeconds"] = DEFAULT_PROBE_PERIOD


def _set_pod_env(
    spec: dict[str, Any],
    container: dict[str, Any],
    msg: InitMsg,
    *,
    target_url: str,
    extra_env: Mapping[str, str] | None,
    io_command: list[str] | None,
) -> None:
    """Give every container the target URL and the extra env; the transformer also its protocol."""
    extra = dict(extra_env or {})
    for each in spec["containers"]:
        _set_env(each, "AIS_TARGET_URL", target_url)
        for key, value in extra.items():
            _set_env(each, key, value)
    if io_command is not None:
        _set_env(container, "AIS_ETL_IO_COMMAND", json.dumps(io_command))
    # The message's comm and arg types, unless the spec sets them: a runtime-image container in an
    # init-spec pod then serves the right protocol without repeating it in its env.
    for key, value in (("COMM_TYPE", msg.comm_type), ("ARG_TYPE", msg.arg_type)):
        if not any(isinstance(e, Mapping) and e.get("name") == key for e in container.get("env") or []):
            _set_env(container, key, value)
    for each in spec.get("initContainers") or []:
        for key, value in extra.items():
            _set_env(each, key, value)


def _container_port(container: Mapping[str, Any]) -> int:
    ports = container.get("ports") or []
    port = ports[0].get("containerPort") if ports and isinstance(ports[0], Mapping) else None
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValidationError(f"containerPort {port!r} is invalid: expecting an integer between 1 and 65535")
    return port


def _service(name: str, labels: Mapping[str, str], namespace: str | None, port: int) -> dict[str, Any]:
    """Return the ``ClusterIP`` Service in front of the pod, named like it."""
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": {POD_LABEL_NAME: name, "app": "ais"},
            "ports": [{"name": "default", "port": port, "targetPort": "default", "protocol": "TCP"}],
        },
    }


def io_query(io_command: list[str]) -> list[tuple[str, str]]:
    """Return the io:// query items: ``command=bash&command=-c&command=<the command joined by spaces>``.

    :param io_command: the container's original command
    :return: pairs for :func:`urllib.parse.urlencode`
    """
    return [("command", "bash"), ("command", "-c"), ("command", " ".join(io_command))]
