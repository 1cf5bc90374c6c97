"""Read the runtime's environment contract into one immutable value.

Every location has a default that matches the pod spec and an override so the same program runs as
a plain local process (the embedded backend, the tests).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# The protocol's constants are the model's: etl/constants.py imports nothing, and the runtime image
# ships it next to this package.
from airflow_ais_etl.etl.constants import (
    ALLOWED_ARGS,
    ARG_FQN,
    ARG_TYPES,
    COMM_TYPES,
    HPULL,
    HPUSH,
    HREV,
    IO,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_PORT = 8080
DEFAULT_GRACE_SECONDS = 25.0


class ConfigError(Exception):
    """The environment does not describe a runnable server."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Everything the server needs to know, resolved once at startup."""

    code_file: Path
    module_name: str
    func_name: str
    chunk_size: int
    arg_type: str
    comm_type: str
    target_url: str
    host: str
    port: int
    workers: int
    grace_seconds: float
    io_command: tuple[str, ...]

    @property
    def is_io(self) -> bool:
        """Tell whether requests run a command instead of the imported function."""
        return self.comm_type == IO

    @property
    def expected_io_query(self) -> list[str]:
        """Return the only ``command`` list the io endpoint agrees to run."""
        return ["bash", "-c", " ".join(self.io_command)]


def load_config(env: Mapping[str, str]) -> RuntimeConfig:
    """Build the configuration from ``env``; raise :class:`ConfigError` with a readable reason."""
    comm_type = env.get("COMM_TYPE", "") or HPUSH
    if comm_type not in COMM_TYPES:
        raise ConfigError(f"COMM_TYPE {comm_type!r} is not one of {', '.join(COMM_TYPES)}")
    arg_type = env.get("ARG_TYPE", "")
    if arg_type not in ARG_TYPES:
        raise ConfigError(f"ARG_TYPE {arg_type!r} is not one of '', 'url', 'fqn'")
    if arg_type not in ALLOWED_ARGS[comm_type]:
        raise ConfigError(f"ARG_TYPE {arg_type!r} cannot be used with COMM_TYPE {comm_type!r}")

    chunk_size = _parse_chunk_size(env.get("CHUNK_SIZE", ""))
    target_url = env.get("AIS_TARGET_URL", "").rstrip("/")
    if comm_type in (HPULL, HREV) and arg_type != ARG_FQN and not target_url:
        raise ConfigError(f"AIS_TARGET_URL must be set for COMM_TYPE {comm_type} (ARG_TYPE {arg_type!r})")
    if target_url and not target_url.startswith(("http://", "https://")):
        raise ConfigError(f"AIS_TARGET_URL {target_url!r} is not an http(s) URL")

    io_command: tuple[str, ...] = ()
    if comm_type == IO:
        io_command = _parse_io_command(env.get("AIS_ETL_IO_COMMAND", ""))

    func_name = env.get("FUNC_TRANSFORM", "") or "transform"
    module_name = env.get("MOD_NAME", "") or "code"
    code_dir = Path(env.get("AIS_ETL_CODE_DIR", "") or "/code")

    host = env.get("AIS_ETL_LISTEN_HOST", "") or env.get("POD_IP", "") or "0.0.0.0"
    port = _parse_int(env, "AIS_ETL_LISTEN_PORT", DEFAULT_PORT, minimum=0, maximum=65535)
    workers = _parse_int(env, "AIS_ETL_WORKERS", available_cpus(), minimum=1, maximum=1024)
    grace = _parse_float(env, "AIS_ETL_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)

    return RuntimeConfig(
        code_file=code_dir / f"{module_name}.py",
        module_name=module_name,
        func_name=func_name,
        chunk_size=chunk_size,
        arg_type=arg_type,
        comm_type=comm_type,
        target_url=target_url,
        host=host,
        port=port,
        workers=workers,
        grace_seconds=grace,
        io_command=io_command,
    )


def _parse_chunk_size(raw: str) -> int:
    raw = raw.strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ConfigError(f"CHUNK_SIZE {raw!r} is not a non-negative decimal number")
    return int(raw)


def _parse_io_command(raw: str) -> tuple[str, ...]:
    if not raw:
        raise ConfigError("AIS_ETL_IO_COMMAND must be set for COMM_TYPE io:// (JSON list of strings)")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"AIS_ETL_IO_COMMAND is not valid JSON: {exc}") from exc
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError("AIS_ETL_IO_COMMAND must be a non-empty JSON list of strings")
    return tuple(value)


def _parse_int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} {raw!r} is not an integer") from exc
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} {value} is outside [{minimum}, {maximum}]")
    return value


def _parse_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} {raw!r} is not a number") from exc
    if not value >= 0 or math.isinf(value):
        raise ConfigError(f"{name} {raw!r} must be a finite number >= 0")
    return value


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"), proc_self: Path = Path("/proc/self")) -> int:
    """Count the CPUs this process may use: affinity mask, capped by a cgroup v2 ``cpu.max`` quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_self)
    if quota is not None:
        count = min(count, quota)
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: Path, proc_self: Path) -> int | None:
    """Return ``ceil(quota / period)`` from the process's cgroup v2 ``cpu.max``, or None if unlimited."""
    candidates = []
    try:
        for line in (proc_self / "cgroup").read_text().splitlines():
            if line.startswith("0::"):
                candidates.append(cgroup_root / line[3:].lstrip("/") / "cpu.max")
    except OSError:
        pass
    candidates.append(cgroup_root / "cpu.max")
    for path in candidates:
        try:
            fields = path.read_text().split()
        except OSError:
            continue
        return parse_cpu_max(fields)
    return None


def parse_cpu_max(fields: list[str]) -> int | None:
    """Turn the fields of a ``cpu.max`` file (``"max 100000"`` or ``"150000 100000"``) into a CPU count."""
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))
