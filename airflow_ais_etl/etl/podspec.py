"""Pod specs: the init-code template, spec parsing/validation, and per-target pod preparation.

Everything works on plain dicts (the JSON form of Kubernetes objects) so that the local backend,
the Kubernetes backend and the tests share one implementation and no Kubernetes client is needed.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.resources
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from airflow_ais_etl.etl.constants import HPUSH, IO
from airflow_ais_etl.etl.errors import ValidationError, go_quote
from airflow_ais_etl.etl.runtimes import RUNTIME_SERVER_COMMAND, RUNTIMES, is_runtime_image

if TYPE_CHECKING:
    from airflow_ais_etl.etl.msg import InitCodeMsg, InitMsg

__all__ = [
    "IO_CODE_COMMAND",
    "IO_SERVER_COMMAND",
    "PreparedPod",
    "Target",
    "code_env",
    "code_pod_spec",
    "io_query",
    "label_value",
    "load_template",
    "parse_pod_spec",
    "pod_name",
    "prepare_pod",
    "validate_pod_spec",
]

IO_CODE_COMMAND = ['python "$AIS_ETL_CODE_DIR/code.py"']
"""Container 0's command for io:// init code: what the io server runs (via ``bash -c``) per object."""

IO_SERVER_COMMAND = ["sh", "-c", "/server"]
"""The reference io server in foreign images (AIStore runtime images install it as ``/server``)."""

POD_LABEL_NAME = "nvidia.com/ais-etl-name"
POD_LABEL_NODE = "nvidia.com/ais-etl-node"
POD_LABEL_TARGET = "nvidia.com/ais-etl-target"
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_PROBE_TIMEOUT = 5
DEFAULT_PROBE_PERIOD = 10

_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_LABEL = 63


# --------------------------------------------------------------------------------------------------
# init-code template


def load_template(name: str) -> str:
    """Read a pod template shipped in the package's ``podspecs/``.

    :param name: file name, e.g. ``runtime.yaml``
    :return: the template text
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValidationError(
            f"invalid template name {go_quote(name)}: expecting a file name like runtime.yaml"
        )
    # airflow_ais_etl/podspecs is the top-level podspecs/ folder: a symlink in the source tree, a real
    # directory in the wheel; either way it is read from the installed package.
    resource = importlib.resources.files("airflow_ais_etl") / "podspecs" / name
    if not resource.is_file():
        raise FileNotFoundError(f"pod template {name!r} not found in airflow_ais_etl/podspecs")
    return resource.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=8)
def _parsed_template(name: str) -> dict[str, Any]:
    pod = yaml.safe_load(load_template(name))
    if not isinstance(pod, dict):
        raise TypeError(f"pod template {name!r} is not a mapping")
    return pod


def _fill(node: Any, values: Mapping[str, Any]) -> Any:
    """Replace placeholder strings (and ``["<X>"]`` lists) in a parsed template, recursively."""
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        if len(node) == 1 and isinstance(node[0], str) and node[0] in values:
            replacement = values[node[0]]
            if isinstance(replacement, list):
                return list(replacement)
        return [_fill(item, values) for item in node]
    if isinstance(node, str) and node in values:
        return values[node]
    return node


def _leftover_placeholders(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [p for value in node.values() for p in _leftover_placeholders(value)]
    if isinstance(node, list):
        return [p for item in node for p in _leftover_placeholders(item)]
    if isinstance(node, str) and _PLACEHOLDER.fullmatch(node):
        return [node]
    return []


def code_pod_spec(msg: InitCodeMsg) -> dict[str, Any]:
    """Build the Pod for an init-code message from its runtime's template.

    The template is parsed once and values are set in the dict, so no function name or other value
    can break the YAML (the reference substitutes text).

    :param msg: a validated init-code message
    :return: the Pod as a dict (name = ETL name; :func:`prepare_pod` renames it per target)
    """
    runtime = RUNTIMES.get(msg.runtime)
    if runtime is None:
        raise ValidationError(
            f"unsupported runtime {go_quote(msg.runtime)} (supported: [{' '.join(sorted(RUNTIMES))}])",
            etl_name=msg.name,
        )
    comm = msg.comm_type or HPUSH
    values: dict[str, Any] = {
        "<NAME>": msg.name,
        "<IMAGE>": runtime.image,
        "<COMMAND>": list(IO_CODE_COMMAND if comm == IO else RUNTIME_SERVER_COMMAND),
        "<FUNC_TRANSFORM>": msg.transform,
        "<COMM_TYPE>": comm,
        "<CHUNK_SIZE>": str(msg.chunk_size) if msg.chunk_size > 0 else "",
        "<ARG_TYPE>": msg.arg_type,
        "<FLAGS>": str(msg.flags) if msg.flags > 0 else "",
    }
    pod: dict[str, Any] = _fill(copy.deepcopy(_parsed_template(runtime.template)), values)
    leftover = _leftover_placeholders(pod)
    if leftover:
        raise RuntimeError(f"pod template {runtime.template!r} has unfilled placeholders {leftover}")
    return pod


def code_env(msg: InitCodeMsg) -> dict[str, str]:
    """Return the env that carries the code and requirements into the pod.

    :param msg: an init-code message
    :return: ``{"AISTORE_CODE": code, "AISTORE_DEPS": requirements or ""}``
    """
    return {"AISTORE_CODE": msg.code, "AISTORE_DEPS": msg.dependencies or ""}


# --------------------------------------------------------------------------------------------------
# parsing and validating user specs


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def parse_pod_spec(text: str | bytes, *, etl_name: str = "") -> dict[str, Any]:
    """Parse a Pod manifest (YAML or JSON; the first YAML document).

    :param text: the manifest
    :param etl_name: for the error context
    :return: the Pod as a dict
    :raises ValidationError: unparsable text (with line/column), not a mapping, not ``v1``/``Pod``
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"failed to parse pod spec: not UTF-8 text ({exc.reason} at byte {exc.start})",
                etl_name=etl_name,
            ) from None
    obj: Any = None
    parsed = False
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
            parsed = True
        except json.JSONDecodeError:
            parsed = False  # maybe a YAML flow mapping; YAML reports the error otherwise
    if not parsed:
        try:
            obj = next(iter(yaml.safe_load_all(text)), None)
        except yaml.YAMLError as exc:
            raise ValidationError(
                f"failed to parse pod spec: {_yaml_error_text(exc)}; fix the YAML (or JSON) manifest",
                etl_name=etl_name,
            ) from None
    fix = "; the spec must be one Pod manifest with apiVersion: v1 and kind: Pod"
    if obj is None:
        raise ValidationError(f"expected pod spec, got: empty document{fix}", etl_name=etl_name)
    if not isinstance(obj, dict):
        raise ValidationError(f"expected pod spec, got: {type(obj).__name__}{fix}", etl_name=etl_name)
    kind = obj.get("kind")
    if kind != "Pod":
        got = kind if isinstance(kind, str) and kind else "no kind"
        raise ValidationError(f"expected pod spec, got: {got}{fix}", etl_name=etl_name)
    api_version = obj.get("apiVersion")
    if api_version != "v1":
        raise ValidationError(
            f"expected pod spec, got: Pod with apiVersion {go_quote(str(api_version or ''))}{fix}",
            etl_name=etl_name,
        )
    return obj


def _affinity_problem(spec: Mapping[str, Any]) -> str | None:
    """Return the reference's error for user node affinity / pod anti-affinity, or None."""
    affinity = spec.get("affinity") or {}
    if not isinstance(affinity, Mapping):
        return "spec.affinity must be a mapping"
    node = affinity.get("nodeAffinity") or {}
    if not isinstance(node, Mapping):
        return "spec.affinity.nodeAffinity must be a mapping"
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    if terms or node.get("preferredDuringSchedulingIgnoredDuringExecution"):
        return (
            "error in YAML spec: pod should not have any NodeAffinities defined "
            "(remove spec.affinity.nodeAffinity: every ETL pod is pinned to its target's node)"
        )
    anti = affinity.get("podAntiAffinity") or {}
    if not isinstance(anti, Mapping):
        return "spec.affinity.podAntiAffinity must be a mapping"
    if anti.get("requiredDuringSchedulingIgnoredDuringExecution") or anti.get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ):
        return (
            "error in YAML spec, pod should not have any NodeAntiAffinities defined "
            "(remove spec.affinity.podAntiAffinity: placement is one pod per target node already)"
        )
    return None


def _main_container(pod: Mapping[str, Any], etl_name: str) -> dict[str, Any]:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise ValidationError(
            "pod spec has no spec section; add spec.containers with exactly one container", etl_name=etl_name
        )
    containers = spec.get("containers")
    count = len(containers) if isinstance(containers, list) else 0
    if not isinstance(containers, list) or count != 1:
        raise ValidationError(f"unsupported number of containers ({count}), expected: 1", etl_name=etl_name)
    container = containers[0]
    if not isinstance(container, dict):
        raise ValidationError("spec.containers[0] must be a mapping", etl_name=etl_name)
    return container


def validate_pod_spec(pod: Mapping[str, Any], comm_type: str, *, etl_name: str = "") -> None:
    """Check a user Pod against the transformer contract (reference §1.8, plus placement rules).

    :param pod: a parsed Pod (see :func:`parse_pod_spec`)
    :param comm_type: the ETL's comm type (io:// needs a container command)
    :param etl_name: for the error context
    :raises ValidationError: with the reference's texts where it has them
    """

    def fail(reason: str) -> ValidationError:
        return ValidationError(reason, etl_name=etl_name)

    container = _main_container(pod, etl_name)
    spec = pod["spec"]
    name = container.get("name") or ""
    image = container.get("image")
    if not isinstance(image, str) or not image.strip():
        raise fail(f"container {go_quote(str(name))} has no image: set spec.containers[0].image")
    ports = container.get("ports")
    count = len(ports) if isinstance(ports, list) else 0
    if not isinstance(ports, list) or count != 1:
        raise fail(f"unsupported number of container ports ({count}), expected: 1")
    port = ports[0] if isinstance(ports[0], Mapping) else {}
    port_name = port.get("name")
    if port_name != "default":
        raise fail(f'expected port name: "default", got: {go_quote(str(port_name or ""))}')
    container_port = port.get("containerPort")
    if (
        isinstance(container_port, bool)
        or not isinstance(container_port, int)
        or not 0 < container_port < 65536
    ):
        raise fail(f"containerPort {container_port!r} is invalid: expecting an integer between 1 and 65535")
    probe = container.get("readinessProbe")
    if not probe:
        raise fail("readinessProbe section is required in a container spec")
    http_get = probe.get("httpGet") if isinstance(probe, Mapping) else None
    if not http_get:
        raise fail("httpGet missing in the readinessProbe")
    if not http_get.get("path"):
        raise fail("expected non-empty path for readinessProbe")
    if http_get.get("port") != "default":
        raise fail('readinessProbe port must be the "default" port')
    command = container.get("command")
    if command is not None and (
        not isinstance(command, list) or not all(isinstance(c, str) for c in command)
    ):
        raise fail("spec.containers[0].command must be a list of strings")
    if comm_type == IO and not command:
        raise fail(
            "io:// requires spec.containers[0].command: the io server runs it for every object "
            '(stdin = object, stdout = result); set e.g. command: ["python", "/app/transform.py"]'
        )
    problem = _affinity_problem(spec)
    if problem:
        raise fail(problem)
    if spec.get("nodeName"):
        raise fail("spec.nodeName must not be set: every ETL pod is pinned to its target's node; remove it")


# --------------------------------------------------------------------------------------------------
# per-target preparation


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
    io_server_command: list[str] | None = None,
) -> PreparedPod:
    """Turn a (validated) Pod into the Pod and Service of this ETL on one target (reference §3.2).

    Works on a deep copy: names the pod, forces ``apiVersion: v1``, pins it to ``target.node`` with
    a required node affinity on ``kubernetes.io/hostname``, swaps the io:// command for the io
    server (remembering the original and passing it as ``AIS_ETL_IO_COMMAND`` so our runtime runs
    only that command), sets labels, readiness defaults (5 s / 10 s) and env.

    The Service is ``ClusterIP`` (the reference uses ``NodePort``): we reach pods by pod IP or
    Service from inside the cluster, and a NodePort would expose every transformer on every node.

    :param pod: the Pod dict (from :func:`code_pod_spec` or :func:`parse_pod_spec`)
    :param msg: the validated init message (name and comm type are used)
    :param target: where the pod runs
    :param target_url: ``AIS_TARGET_URL`` for the pod (callback URL incl. secret)
    :param extra_env: more env for every container and init container (init code: :func:`code_env`)
    :param namespace: set ``metadata.namespace`` on both objects when given
    :param labels: extra labels for both objects (values are sanitised; ours win on conflicts)
    :param io_server_command: io:// server command; default: ours for our image, else ``/server``
    :return: the prepared pod and service
    :raises ValidationError: user node affinity / pod anti-affinity, or an unusable spec
    """
    name = pod_name(msg.name, target.id)

    def fail(reason: str) -> ValidationError:
        return ValidationError(reason, etl_name=msg.name, target=target.id, pod_name=name)

    new_pod: dict[str, Any] = copy.deepcopy(dict(pod))
    try:
        container = _main_container(new_pod, msg.name)
    except ValidationError as exc:
        raise exc.with_context(target=target.id, pod_name=name) from None
    spec = new_pod["spec"]
    metadata = new_pod.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
    new_pod["metadata"] = metadata
    metadata["name"] = name
    metadata.pop("generateName", None)
    new_pod["apiVersion"] = "v1"
    new_pod["kind"] = "Pod"
    if namespace:
        metadata["namespace"] = namespace

    problem = _affinity_problem(spec)
    if problem:
        raise fail(problem)
    affinity = dict(spec.get("affinity") or {})
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [target.node]}]}
            ]
        }
    }
    spec["affinity"] = affinity

    io_command: list[str] | None = None
    if msg.comm_type == IO:
        original = container.get("command")
        if not original or not isinstance(original, list):
            raise fail(
                "io:// requires spec.containers[0].command: the io server runs it for every object; "
                'set e.g. command: ["python", "/app/transform.py"]'
            )
        io_command = [str(part) for part in original]
        if io_server_command is None:
            image = container.get("image")
            ours = isinstance(image, str) and is_runtime_image(image)
            io_server_command = RUNTIME_SERVER_COMMAND if ours else IO_SERVER_COMMAND
        container["command"] = list(io_server_command)

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
            "app.kubernetes.io/instance": label_value(msg.name),
        }
    )
    metadata["labels"] = all_labels

    probe = container.get("readinessProbe")
    if isinstance(probe, dict) and not probe.get("timeoutSeconds") and not probe.get("periodSeconds"):
        probe["timeoutSeconds"] = DEFAULT_PROBE_TIMEOUT
        probe["periodSeconds"] = DEFAULT_PROBE_PERIOD

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

    ports = container.get("ports") or []
    container_port = ports[0].get("containerPort") if ports and isinstance(ports[0], Mapping) else None
    if isinstance(container_port, bool) or not isinstance(container_port, int):
        raise fail(f"containerPort {container_port!r} is invalid: expecting an integer between 1 and 65535")
    service_meta: dict[str, Any] = {"name": name, "labels": dict(all_labels)}
    if namespace:
        service_meta["namespace"] = namespace
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": service_meta,
        "spec": {
            "type": "ClusterIP",
            "selector": {POD_LABEL_NAME: name, "app": "ais"},
            "ports": [
                {"name": "default", "port": container_port, "targetPort": "default", "protocol": "TCP"}
            ],
        },
    }
    return PreparedPod(pod=new_pod, service=service, pod_name=name, io_command=io_command)


def io_query(io_command: list[str]) -> list[tuple[str, str]]:
    """Return the io:// query items: ``command=bash&command=-c&command=<the command joined by spaces>``.

    :param io_command: the container's original command
    :return: pairs for :func:`urllib.parse.urlencode`
    """
    return [("command", "bash"), ("command", "-c"), ("command", " ".join(io_command))]
