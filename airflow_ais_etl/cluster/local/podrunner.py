"""Run a Pod spec as local processes: the process "kubelet" shared by the local backend and tests.

One mechanism for every pod: :mod:`~airflow_ais_etl.cluster.local.podplan` translates the spec
(volumes, env, commands) and refuses what cannot run here, then
:mod:`~airflow_ais_etl.cluster.local.processes` runs the init containers to completion and starts
the other containers detached. Addresses and probes are in :mod:`~airflow_ais_etl.cluster.local.network`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.local.podplan import plan_pod
from airflow_ais_etl.cluster.local.processes import LocalPod, run_init_containers, start_containers
from airflow_ais_etl.cluster.private import private_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from airflow_ais_etl.cluster.local.podplan import KeyResolver

__all__ = ["start_pod"]


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
    key_resolver: KeyResolver | None = None,
) -> LocalPod:
    """Run the init containers of ``pod`` to completion, then start its containers detached.

    Raises :class:`ValidationError` when a container cannot run locally (nothing is started) and
    :class:`PodStartError` (exit code + log tail) when an init container fails.

    :param die_with_parent: the processes get SIGTERM when the thread that started them ends
    :param key_resolver: resolves ``secretKeyRef``/``configMapKeyRef`` env (an emulated kubelet's)
    """
    private_dir(workdir / "logs")
    plan = plan_pod(
        pod,
        workdir,
        ip=ip,
        node_name=node_name,
        namespace=namespace,
        volume_dirs=volume_dirs or {},
        image_command=image_command,
        extra_base_env=extra_base_env or {},
        key_resolver=key_resolver,
    )
    run_init_containers(plan.inits, workdir, plan.name, timeout=init_timeout, die_with_parent=die_with_parent)
    local = LocalPod(plan.name, ip, plan.port, workdir)
    local.containers.extend(start_containers(plan.mains, workdir, die_with_parent=die_with_parent))
    return local
