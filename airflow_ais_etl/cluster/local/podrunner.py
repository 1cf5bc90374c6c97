"""Run a Pod spec as local processes: the process "kubelet" shared by the local backend and tests.

One mechanism for every pod: emptyDir volumes become directories, mount paths in env values,
commands and args are translated to those directories, ``$(VAR)`` references and ``fieldRef``
env are resolved as Kubernetes does, init containers run to completion, then each container's
program runs detached under a :mod:`~airflow_ais_etl.cluster.local.podshim` that records its exit code.
A container runs locally when its ``command`` names a program that exists on this machine, or
when its image is one whose program is known (``image_command``); anything else is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.errors import PodStartError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass
class ContainerProcess:
    """One container's program, supervised by a shim that records its pid and exit code."""

    name: str
    state_dir: Path
    log_path: Path
    shim_pid: int = 0

    def pid(self) -> int | None:
        try:
            return int((self.state_dir / "pid").read_text())
        except (OSError, ValueError):
            return None

    def exit_code(self) -> int | None:
        """Return the program's exit code (negative: killed by that signal), None while running."""
        try:
            return int((self.state_dir / "exit_code").read_text())
        except (OSError, ValueError):
            if self.shim_pid and not pid_alive(self.shim_pid):
                return -signal.SIGKILL  # the shim itself was killed: the container is gone
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_dir": str(self.state_dir),
            "log_path": str(self.log_path),
            "shim_pid": self.shim_pid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContainerProcess:
        return cls(data["name"], Path(data["state_dir"]), Path(data["log_path"]), int(data["shim_pid"]))


@dataclass
class LocalPod:
    """A pod running as local processes."""

    name: str
    ip: str
    port: int
    workdir: Path
    containers: list[ContainerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def exited(self) -> tuple[str, int] | None:
        """Return ``(container, exit code)`` of the first container that ended, if any."""
        for c in self.containers:
            code = c.exit_code()
            if code is not None:
                return c.name, code
        return None

    def pids(self) -> list[int]:
        return [p for c in self.containers if (p := c.pid()) is not None]

    def log_text(self) -> str:
        parts = []
        for path in sorted(self.workdir.glob("logs/*.log")):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ip": self.ip,
            "port": self.port,
            "workdir": str(self.workdir),
            "containers": [c.to_dict() for c in self.containers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalPod:
        return cls(
            data["name"],
            data["ip"],
            int(data["port"]),
            Path(data["workdir"]),
            [ContainerProcess.from_dict(c) for c in data["containers"]],
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


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
) -> dict[str, str]:
    """Return the process environment of ``container``: base env, then its env list in order."""
    env = dict(base_env)
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" in item:
            ref = item["valueFrom"]
            if "fieldRef" in ref:
                env[name] = _field_ref(ref["fieldRef"]["fieldPath"], facts)
                continue
            raise ValidationError(
                f"env {name!r} of container {container.get('name')!r} uses {sorted(ref)} "
                "which cannot be resolved locally: use a literal value"
            )
        value = item.get("value")
        env[name] = translate_paths(expand_var_refs("" if value is None else str(value), env), mounts)
    return env


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
                "backend runs images of airflow-ais-etl's runtime, or a container whose `command` "
                "names a program installed on this machine (add `command:` to the spec)"
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
            local = local / vm["subPath"]
            local.mkdir(parents=True, exist_ok=True)
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
        dirs[name].mkdir(parents=True, exist_ok=True)
    return dirs


def base_env() -> dict[str, str]:
    """Return the minimal environment every local container starts from (PATH finds our Python)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": os.environ.get("LANG", "C.UTF-8")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def log_tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file ('' when missing)."""
    try:
        data = path.read_bytes()[-65536:]
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _pdeathsig() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Prepared:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def _prepare(
    containers: Sequence[Mapping[str, Any]],
    *,
    workdir: Path,
    facts: Mapping[str, str],
    volume_dirs: Mapping[str, Path],
    extra_base_env: Mapping[str, str],
    image_command: Callable[[str], list[str] | None],
) -> list[_Prepared]:
    out = []
    for c in containers:
        mounts = _mounts(c, volume_dirs)
        env = container_env(c, facts=facts, mounts=mounts, base_env={**base_env(), **extra_base_env})
        argv = container_argv(c, env, mounts, image_command)
        cwd = Path(translate_paths(str(c["workingDir"]), mounts)) if c.get("workingDir") else workdir
        out.append(_Prepared(str(c["name"]), argv, env, cwd))
    return out


def start_pod(
    pod: Mapping[str, Any],
    workdir: Path,
    *,
    ip: str,
    node_name: str,
    namespace: str = "default",
    volume_dirs: Mapping[str, Path] | None = None,
    image_command: Callable[[str], list[str] | None] = lambda _image: None,
    extra_base_env: Mapping[str, str] | None = None,
    init_timeout: float = 600.0,
    die_with_parent: bool = False,
) -> LocalPod:
    """Run the init containers of ``pod`` to completion, then start its containers detached.

    Raises :class:`ValidationError` when a container cannot run locally (nothing is started) and
    :class:`PodStartError` (exit code + log tail) when an init container fails.
    """
    name = str(pod.get("metadata", {}).get("name", "pod"))
    spec = pod.get("spec", {})
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    vols = _volume_dirs(pod, workdir, volume_dirs or {})
    facts = {
        "status.podIP": ip,
        "status.hostIP": ip,
        "metadata.name": name,
        "metadata.namespace": namespace,
        "spec.nodeName": node_name,
        "spec.serviceAccountName": str(spec.get("serviceAccountName", "default")),
    }
    extra = dict(extra_base_env or {})
    init_specs = list(spec.get("initContainers") or [])
    sidecars = [c for c in init_specs if c.get("restartPolicy") == "Always"]

    def prepare(containers: list[Mapping[str, Any]]) -> list[_Prepared]:
        return _prepare(
            containers,
            workdir=workdir,
            facts=facts,
            volume_dirs=vols,
            extra_base_env=extra,
            image_command=image_command,
        )

    inits = prepare([c for c in init_specs if c not in sidecars])
    mains = prepare(sidecars + list(spec.get("containers") or []))
    preexec = _pdeathsig if die_with_parent else None
    for init in inits:
        log_path = workdir / "logs" / f"{init.name}.log"
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.run(
                    init.argv,
                    env=init.env,
                    cwd=init.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=init_timeout,
                    preexec_fn=preexec,
                    check=False,
                )
                code: int = proc.returncode
            except subprocess.TimeoutExpired:
                code = -signal.SIGKILL
        if code != 0:
            tail = log_tail(log_path)
            raise PodStartError(
                f"init container {init.name!r} failed with exit code {code}:\n{tail}",
                exit_code=code,
                log_tail=tail,
                pod_name=name,
            )
    local = LocalPod(name, ip, container_port(spec), workdir)
    for main in mains:
        state_dir = workdir / "state" / main.name
        if state_dir.exists():
            shutil.rmtree(state_dir)
        log_path = workdir / "logs" / f"{main.name}.log"
        with open(log_path, "ab") as log:
            shim = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "airflow_ais_etl.cluster.local.podshim",
                    str(state_dir),
                    "--",
                    *main.argv,
                ],
                env=main.env,
                cwd=main.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
            )
        local.containers.append(ContainerProcess(main.name, state_dir, log_path, shim.pid))
    return local


def container_port(spec: Mapping[str, Any]) -> int:
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            return int(p["containerPort"])
    return 0


def stop_pod(pod: LocalPod, grace: float = 10.0) -> None:
    """Stop every container of ``pod``: SIGTERM, then SIGKILL after ``grace`` seconds. Idempotent."""
    groups = [c.shim_pid for c in pod.containers if c.shim_pid]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        _reap(groups)
        time.sleep(0.05)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline + 5:
        _reap(groups)
        time.sleep(0.02)
    _reap(groups)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(pid_alive(p) for p in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid:
                out.append(int(entry.name))
    return out


def _reap(pids: Sequence[int]) -> None:
    """Collect the exit status of shims this process started (only those: never other children)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def free_loopback_ip(port: int, attempts: int = 50) -> str:
    """Return a random 127.x.y.z address on which ``port`` is free (each pod gets its own)."""
    for _ in range(attempts):
        ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as s:
            try:
                s.bind((ip, port))
            except OSError:
                continue
        return ip
    raise OSError(f"no free loopback address for port {port} after {attempts} attempts")


def probe_http(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Run an httpGet readiness probe: ready on any 2xx/3xx; return ``(ready, detail)``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 400, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, str(exc)


def readiness_url(pod: Mapping[str, Any], ip: str) -> str | None:
    """Return the URL of container 0's httpGet readiness probe (named or numeric port)."""
    containers = pod.get("spec", {}).get("containers") or []
    if not containers:
        return None
    probe = (containers[0].get("readinessProbe") or {}).get("httpGet")
    if not probe:
        return None
    port = probe.get("port")
    if isinstance(port, str) and not port.isdigit():
        ports = {p.get("name"): p["containerPort"] for p in containers[0].get("ports") or []}
        port = ports.get(port)
    path = probe.get("path") or "/"
    return f"http://{ip}:{port}{path if path.startswith('/') else '/' + path}"


def dump(pod: LocalPod) -> str:
    """Serialise a pod's process state as JSON."""
    return json.dumps(pod.to_dict())
