"""Translate a Pod spec into the local processes that run it, as a kubelet would materialise it.

emptyDir volumes become directories; mount paths in env values, commands and args become those
directories; ``$(VAR)`` references and ``fieldRef`` env resolve as Kubernetes resolves them, and
``secretKeyRef``/``configMapKeyRef`` env through a resolver the caller supplies (an emulated
kubelet reads its API store; the local backend has none, so such env is refused). A
container runs locally when its ``command`` names a program that exists on this machine, or when
its image is one whose program is known (``image_command``: the project's runtime images and
AIS's ``runtime_python``, :func:`airflow_ais_etl.etl.runtimes.local_image_command`); anything else
is refused here, before any process starts.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ais_etl.cluster.local.podnet import own_address, pod_site_env
from airflow_ais_etl.cluster.private import private_dir
from airflow_ais_etl.etl.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "ContainerPlan",
    "KeyResolver",
    "PodPlan",
    "base_env",
    "container_argv",
    "container_env",
    "container_port",
    "expand_var_refs",
    "plan_pod",
    "translate_paths",
]


class KeyResolver(Protocol):
    """Return the value under ``key`` of Secret or ConfigMap ``name`` (None when either is missing)."""

    def __call__(self, kind: str, name: str, key: str) -> str | None: ...


_KEY_REFS = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap"}
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True)
class ContainerPlan:
    """One container as a local process: its program, environment and working directory."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class PodPlan:
    """A pod as local processes: init containers run to completion first, then the rest start."""

    name: str
    port: int
    """The first declared container port (0 when none is declared)."""
    inits: list[ContainerPlan]
    mains: list[ContainerPlan]
    """Native sidecars (init containers with ``restartPolicy: Always``) first, then the containers."""


def plan_pod(
    pod: Mapping[str, Any],
    workdir: Path,
    *,
    ip: str,
    node_name: str,
    namespace: str,
    volume_dirs: Mapping[str, Path],
    image_command: Callable[[str], list[str] | None],
    extra_base_env: Mapping[str, str],
    key_resolver: KeyResolver | None = None,
) -> PodPlan:
    """Plan every container of ``pod``; raise :class:`ValidationError` when one cannot run locally.

    :param volume_dirs: directories to use for volumes of these names instead of fresh emptyDirs
    :param key_resolver: resolves ``secretKeyRef``/``configMapKeyRef`` env (None: refuse such env)
    """
    name = str(pod.get("metadata", {}).get("name", "pod"))
    spec = pod.get("spec", {})
    volumes = _volume_dirs(pod, workdir, volume_dirs)
    facts = _field_facts(name, spec, ip=ip, node_name=node_name, namespace=namespace)
    env = {**base_env(), **extra_base_env}

    def plan(containers: Sequence[Mapping[str, Any]]) -> list[ContainerPlan]:
        return [
            _plan_container(c, workdir, facts, volumes, env, image_command, key_resolver) for c in containers
        ]

    init_specs = list(spec.get("initContainers") or [])
    sidecars = [c for c in init_specs if c.get("restartPolicy") == "Always"]
    inits = plan([c for c in init_specs if c not in sidecars])
    mains = plan(sidecars + list(spec.get("containers") or []))
    return PodPlan(name, container_port(spec), inits, mains)


def _field_facts(
    name: str, spec: Mapping[str, Any], *, ip: str, node_name: str, namespace: str
) -> dict[str, str]:
    """Return the values ``fieldRef`` env may name, as the kubelet fills them."""
    return {
        "status.podIP": ip,
        "status.hostIP": ip,
        "metadata.name": name,
        "metadata.namespace": namespace,
        "spec.nodeName": node_name,
        "spec.serviceAccountName": str(spec.get("serviceAccountName", "default")),
    }


def _plan_container(
    container: Mapping[str, Any],
    workdir: Path,
    facts: Mapping[str, str],
    volume_dirs: Mapping[str, Path],
    env: Mapping[str, str],
    image_command: Callable[[str], list[str] | None],
    key_resolver: KeyResolver | None = None,
) -> ContainerPlan:
    mounts = _mounts(container, volume_dirs)
    proc_env = container_env(container, facts=facts, mounts=mounts, base_env=env, key_resolver=key_resolver)
    argv = container_argv(container, proc_env, mounts, image_command)
    ip = facts["status.podIP"]  # inside a pod 0.0.0.0 is the pod's own address: keep it so here
    argv, proc_env = [own_address(a, ip) for a in argv], {k: own_address(v, ip) for k, v in proc_env.items()}
    proc_env.update(pod_site_env(ip, proc_env.get("PYTHONPATH", "")))
    working_dir = container.get("workingDir")
    cwd = Path(translate_paths(str(working_dir), mounts)) if working_dir else workdir
    return ContainerPlan(str(container["name"]), argv, proc_env, cwd)


def expand_var_refs(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` like Kubernetes: unknown references stay verbatim, ``$$`` is a ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


def translate_paths(text: str, mounts: Sequence[tuple[str, Path]]) -> str:
    """Replace each mount path that appears as a path prefix in ``text`` by its local directory."""
    for mount_path, local in sorted(mounts, key=lambda m: -len(m[0])):
        mp = mount_path.rstrip("/") or "/"
        pattern = r"(?<![\w./-])" + re.escape(mp) + r"(?=$|[/\s\"':;])"
        text = re.sub(pattern, str(local).replace("\\", "\\\\"), text)
    return text


def _field_ref(path: str, facts: Mapping[str, str]) -> str:
    if path not in facts:
        raise ValidationError(
            f"env fieldRef {path!r} is not supported locally (supported: {', '.join(sorted(facts))})"
        )
    return facts[path]


def container_env(
    container: Mapping[str, Any],
    *,
    facts: Mapping[str, str],
    mounts: Sequence[tuple[str, Path]],
    base_env: Mapping[str, str],
    key_resolver: KeyResolver | None = None,
) -> dict[str, str]:
    """Return the process environment of ``container``: base env, then its env list in order.

    Referenced values join ``env`` in order too, so a later ``$(VAR)`` sees them as Kubernetes does.
    """
    env = dict(base_env)
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" in item:
            ref = item["valueFrom"]
            if "fieldRef" in ref:
                env[name] = _field_ref(ref["fieldRef"]["fieldPath"], facts)
                continue
            kind = next((k for k in _KEY_REFS if k in ref), None)
            if kind is not None and key_resolver is not None:
                value = _key_ref(_KEY_REFS[kind], ref[kind], key_resolver, container)
                if value is not None:
                    env[name] = value
                continue
            raise ValidationError(
                f"env {name!r} of container {container.get('name')!r} uses {sorted(ref)} "
                "which cannot be resolved locally: use a literal value"
            )
        value = item.get("value")
        env[name] = translate_paths(expand_var_refs("" if value is None else str(value), env), mounts)
    return env


def _key_ref(
    kind: str, ref: Mapping[str, Any], resolve: KeyResolver, container: Mapping[str, Any]
) -> str | None:
    """Return the referenced value; a missing one fails the container like the kubelet's config error."""
    value = resolve(kind, str(ref.get("name", "")), str(ref.get("key", "")))
    if value is None and not ref.get("optional"):
        raise ValidationError(
            f"container {container.get('name')!r}: {kind.lower()} {ref.get('name')!r} or its key "
            f"{ref.get('key')!r} not found"
        )
    return value


def container_argv(
    container: Mapping[str, Any],
    env: Mapping[str, str],
    mounts: Sequence[tuple[str, Path]],
    image_command: Callable[[str], list[str] | None],
) -> list[str]:
    """Return the local argv of ``container`` or raise why it cannot run on this machine."""
    image = str(container.get("image", ""))
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not command:
        command = image_command(image) or []
        if not command:
            raise ValidationError(
                f"container {container.get('name')!r}: image {image!r} cannot run locally; the local "
                "backend runs images of airflow-ais-etl's runtime and AIS's aistorage/runtime_python "
                "(init_class), or a container whose `command` "
                "names a program installed on this machine: add `command:` to the Pod's container, or "
                '`runtime.command` to an ETL runtime spec (e.g. ["uvicorn", "fastapi_server:fastapi_app", '
                '"--host", "0.0.0.0", "--port", "8000"] with the image\'s server module on this machine)'
            )
    argv = [translate_paths(expand_var_refs(a, env), mounts) for a in command + args]
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        raise ValidationError(
            f"container {container.get('name')!r}: program {argv[0]!r} (image {image!r}) does not exist on "
            "this machine, so the container cannot run locally; install it or change the `command`"
        )
    return argv


def _mounts(container: Mapping[str, Any], volume_dirs: Mapping[str, Path]) -> list[tuple[str, Path]]:
    out = []
    for vm in container.get("volumeMounts") or []:
        if vm["name"] not in volume_dirs:
            raise ValidationError(f"volume {vm['name']!r} is not defined as an emptyDir in the pod spec")
        local = volume_dirs[vm["name"]]
        if vm.get("subPath"):
            local = private_dir(local / vm["subPath"])
        out.append((str(vm["mountPath"]), local))
    return out


def _volume_dirs(pod: Mapping[str, Any], workdir: Path, overrides: Mapping[str, Path]) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for vol in pod.get("spec", {}).get("volumes") or []:
        name = vol["name"]
        if name in overrides:
            dirs[name] = overrides[name]
        elif "emptyDir" in vol:
            dirs[name] = workdir / "volumes" / name
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise ValidationError(
                f"volume {name!r} of kind {kinds} cannot be provided locally (only emptyDir)"
            )
        private_dir(dirs[name])
    return dirs


def base_env() -> dict[str, str]:
    """Return the minimal environment every local container starts from (PATH finds our Python)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": os.environ.get("LANG", "C.UTF-8")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def container_port(spec: Mapping[str, Any]) -> int:
    """Return the first port any container declares (0 when none does): where the pod serves."""
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            return int(p["containerPort"])
    return 0
