"""Build the pod an ETL runs in on Kubernetes: the model's prepared pod plus the gateway sidecar.

The sidecar (:mod:`airflow_ais_etl.cluster.gateway`) serves ``AIS_TARGET_URL`` on the pod's IP, so
hpull/hrev/url reach objects as they would on an AIStore target. Host paths may be mounted at the
same path in every container (local buckets, ``fqn``, the bucket map). The io command of an
``io://`` pod travels as an annotation, so any worker can read it back from the running pod.

The path secret the sidecar checks lives in one Secret per ETL (:func:`gateway_secret`), read by
``secretKeyRef``: anyone who can ``get pods`` sees only its name. ``AIS_TARGET_URL`` refers to it
as ``$(AIS_ETL_GATEWAY_SECRET)``, which Kubernetes expands from the env declared before it.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.gateway import CALLBACK_PREFIX, SECRET_ENV, new_secret
from airflow_ais_etl.cluster.kubernetes.claims import VolumeClaim, mount_claims
from airflow_ais_etl.cluster.kubernetes.objects import main_port
from airflow_ais_etl.cluster.sealedgrants import PUT_KEY_ENV
from airflow_ais_etl.etl.constants import TOKEN_ENV
from airflow_ais_etl.etl.podsecurity import added_container_context
from airflow_ais_etl.etl.podspec import (
    POD_LABEL_NAME,
    POD_LABEL_NODE,
    POD_LABEL_TARGET,
    pod_name,
    prepare_pod,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.podspec import PreparedPod, Target

__all__ = [
    "ANNOTATION_IO_COMMAND",
    "GATEWAY_CONTAINER",
    "POD_IP_ENV",
    "SECRET_KEY",
    "GatewayConfig",
    "build_pod",
    "etl_put_key",
    "gateway_container",
    "gateway_origin",
    "gateway_secret",
    "gateway_secret_name",
    "io_command",
    "mount_host_paths",
    "pod_ip_env",
]

ANNOTATION_IO_COMMAND = "airflow-ais-etl/io-command"
GATEWAY_CONTAINER = "ais-etl-gateway"
POD_IP_ENV = "AIS_ETL_POD_IP"
SECRET_KEY = "gateway-secret"
TOKEN_KEY = "pod-token"
"""Key of the ETL's pod token in its Secret: the server reads it as ``AIS_ETL_TOKEN``, the engine sends it."""
PUT_KEY = "put-key"
"""Key of the ETL's put key in its Secret: jobs sign direct-put grants with it, only the sidecar checks them."""
_DEFAULT_MAIN_PORT = 8080
_PER_POD_LABELS = (POD_LABEL_NAME, POD_LABEL_NODE, POD_LABEL_TARGET)


@dataclass(frozen=True)
class GatewayConfig:
    """How the backend equips every ETL pod.

    :param port: the sidecar's port (moved up by one if the transformer uses it)
    :param buckets_file: the gateway's bucket map, as a path inside the pods
    :param secret_name: a Secret whose keys become the sidecar's env (object-store credentials)
    :param host_paths: host directories to mount at the same path in every container
    :param claims: PersistentVolumeClaims to mount at their paths in every container
    """

    port: int
    buckets_file: str
    secret_name: str | None = None
    host_paths: tuple[str, ...] = ()
    claims: tuple[VolumeClaim, ...] = ()


def pod_ip_env(name: str = POD_IP_ENV) -> dict[str, Any]:
    """Return an env entry that the kubelet fills with the pod's IP."""
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def gateway_secret_name(etl_name: str) -> str:
    """Name the gateway Secret of an ETL (a DNS label, like its pods' names)."""
    return pod_name(etl_name, "gateway-secret")


def gateway_secret(etl_name: str, namespace: str, pod: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ETL's gateway Secret: one fresh random path secret, labelled like the ETL's pods.

    The labels (``pod``'s minus the per-target ones) let stop/delete and the pre-clean of a new
    start find it by the ETL's selector, so a leaked one is found and removed.
    """
    labels = {k: v for k, v in (pod["metadata"].get("labels") or {}).items() if k not in _PER_POD_LABELS}
    labels["app.kubernetes.io/component"] = "gateway-secret"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": gateway_secret_name(etl_name), "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": {SECRET_KEY: new_secret(), TOKEN_KEY: new_secret(), PUT_KEY: secrets.token_urlsafe(32)},
    }


def secret_env(secret_name: str) -> dict[str, Any]:
    """Return the env entry that reads the path secret from the ETL's Secret."""
    return {"name": SECRET_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": SECRET_KEY}}}


def token_env(secret_name: str) -> dict[str, Any]:
    """Return the env entry that gives a server container the ETL's pod token (the runtime checks it)."""
    return {"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": TOKEN_KEY}}}


def put_key_env(secret_name: str) -> dict[str, Any]:
    """Return the env entry that gives the sidecar (and no other container) the ETL's put key."""
    return {"name": PUT_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": PUT_KEY}}}


def _secret_value(secret: Mapping[str, Any] | None, key: str) -> str | None:
    encoded = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(encoded).decode() if encoded else None


def etl_token(secret: Mapping[str, Any] | None) -> str | None:
    """Return the pod token held by an ETL's Secret as read from the API (None: no Secret, no token)."""
    return _secret_value(secret, TOKEN_KEY)


def etl_put_key(secret: Mapping[str, Any] | None) -> str | None:
    """Return the put key held by an ETL's Secret (None: a Secret made before direct put here)."""
    return _secret_value(secret, PUT_KEY)


def gateway_container(
    config: GatewayConfig, port: int, secret_name: str, image: str, pod_spec: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the gateway as a native sidecar (an init container with ``restartPolicy: Always``).

    Its securityContext meets Pod Security ``restricted`` within ``pod_spec`` (the pod it joins), so
    adding it never makes a compliant pod non-compliant. The root file system stays writable: object
    store clients may cache credentials under HOME.
    """
    container: dict[str, Any] = {
        "name": GATEWAY_CONTAINER,
        "image": image,
        "restartPolicy": "Always",
        "command": ["python", "-m", "airflow_ais_etl.cluster.gateway"],
        "args": ["--host", f"$({POD_IP_ENV})", "--port", str(port), "--buckets", config.buckets_file],
        "env": [pod_ip_env(), secret_env(secret_name), put_key_env(secret_name)],
        "ports": [{"name": "ais-gateway", "containerPort": port, "protocol": "TCP"}],
        "securityContext": added_container_context(pod_spec or {}),
    }
    if config.secret_name:
        container["envFrom"] = [{"secretRef": {"name": config.secret_name}}]
    return container


def gateway_origin(pod: Mapping[str, Any]) -> str | None:
    """Return ``http://<pod IP>:<sidecar port>``, where the pod's transformer reaches its own gateway
    (None while the pod has no IP, or for a pod without our sidecar)."""
    ip = (pod.get("status") or {}).get("podIP")
    for container in (pod.get("spec") or {}).get("initContainers") or []:
        if container.get("name") == GATEWAY_CONTAINER and ip:
            ports = container.get("ports") or [{}]
            return f"http://{ip}:{ports[0].get('containerPort')}"
    return None


def mount_host_paths(spec: dict[str, Any], paths: Iterable[str]) -> None:
    """Mount each host path at the same path in every container of ``spec`` (in place).

    An explicit opt-in (``mount_shared_paths``): hostPath volumes are forbidden by the ``baseline``
    and ``restricted`` Pod Security levels, so such pods are refused in namespaces enforcing them.
    """
    volumes = list(spec.get("volumes") or [])
    mounts = []
    for i, path in enumerate(paths):
        vol = f"ais-etl-shared-{i}"
        volumes.append({"name": vol, "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
        mounts.append({"name": vol, "mountPath": path})
    spec["volumes"] = volumes
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        c["volumeMounts"] = list(c.get("volumeMounts") or []) + [dict(m) for m in mounts]


def build_pod(
    config: GatewayConfig,
    msg: InitMsg,
    template: Mapping[str, Any],
    target: Target,
    *,
    env: Mapping[str, str],
    image: str,
    namespace: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PreparedPod:
    """Return the pod (and Service) of ``msg`` on ``target``, gateway sidecar included.

    The path secret comes from the Secret :func:`gateway_secret_name` names (created by the caller).

    :param template: the ETL's pod spec (from the runtime template or the user's spec)
    :param env: extra env of the transformer
    :param image: the sidecar's image
    :param labels: extra labels of the Pod and Service (e.g. the Airflow origin)
    :param annotations: extra annotations of the Pod and Service
    """
    port = main_port(template) or _DEFAULT_MAIN_PORT
    gw_port = config.port + 1 if port == config.port else config.port
    secret_name = gateway_secret_name(msg.name)
    target_url = f"http://$({POD_IP_ENV}):{gw_port}{CALLBACK_PREFIX}$({SECRET_ENV})"
    prepared = prepare_pod(
        template,
        msg,
        target,
        target_url=target_url,
        extra_env=env,
        namespace=namespace,
        labels=labels,
        annotations=annotations,
    )
    pod = prepared.pod
    spec = pod["spec"]
    for container in spec["containers"]:
        drop = (POD_IP_ENV, SECRET_ENV, TOKEN_ENV)
        env_list = [e for e in container.get("env") or [] if e.get("name") not in drop]
        front = [pod_ip_env(), secret_env(secret_name), token_env(secret_name)]  # before AIS_TARGET_URL
        if not any(e.get("name") == "POD_IP" for e in env_list):
            front.append(pod_ip_env("POD_IP"))  # our runtime (and the io server) bind it
        container["env"] = front + env_list
    spec["initContainers"] = [gateway_container(config, gw_port, secret_name, image, spec)] + list(
        spec.get("initContainers") or []
    )
    if config.host_paths:
        mount_host_paths(spec, config.host_paths)
    mount_claims(spec, config.claims)
    if prepared.io_command is not None:
        annotations = dict(pod["metadata"].get("annotations") or {})
        annotations[ANNOTATION_IO_COMMAND] = json.dumps(prepared.io_command)
        pod["metadata"]["annotations"] = annotations
    return prepared


def io_command(pod: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Return the io command a running pod was built with (None unless it is an ``io://`` pod)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_IO_COMMAND)
    return tuple(json.loads(raw)) if raw else None
