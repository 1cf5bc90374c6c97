"""Direct put on Kubernetes: each pod PUTs its results to its own gateway sidecar, under a signed grant.

The job signs a grant for its destination with the ETL's put key (:mod:`~airflow_ais_etl.cluster.sealedgrants`),
read from the ETL's Secret; the sidecar, the only container given that key, checks it and writes
the object with its own mounts and credentials, giving new files and directories the modes the
worker's umask gives, as if the worker had written them. So the results' bytes go from pod to
destination and never through the Airflow worker.

The grant is offered only where the sidecar can write: an object store (with the credentials of
the connection's ``gateway_secret_name``, or the node's workload identity; the sidecar's image must
have Airflow's object storage, which the runtime image lacks: ``gateway_image``), or a local directory
under a path mounted writable in every ETL pod (``shared_paths``, or a ``volume_claims`` entry with
``read_only: false``). Elsewhere, and for ETLs started before their Secret held a put key, the
engine writes the results, and the job's stats count the bytes it carried.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.bucketmap import bucket_name
from airflow_ais_etl.cluster.directput import DirectPutGrant
from airflow_ais_etl.cluster.gatewaypaths import local_root
from airflow_ais_etl.cluster.kubernetes.gateway import etl_put_key, gateway_origin, gateway_secret_name
from airflow_ais_etl.cluster.kubernetes.objects import is_deleting, label_of
from airflow_ais_etl.cluster.sealedgrants import SealedTokens
from airflow_ais_etl.etl.errors import EtlError
from airflow_ais_etl.etl.podspec import POD_LABEL_TARGET
from airflow_ais_etl.runtime.bucketfiles import is_inside, process_umask

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_ais_etl.cluster.kubernetes.claims import VolumeClaim
    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient

__all__ = ["signed_put_grant", "writable_in_pods"]


def writable_in_pods(shared_paths: Iterable[str], claims: Iterable[VolumeClaim]) -> tuple[str, ...]:
    """Return the directories every ETL pod sees at the same path and may write."""
    return tuple(shared_paths) + tuple(c.path for c in claims if not c.read_only)


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(is_inside(path, root.rstrip(os.sep) or os.sep) for root in roots)


def signed_put_grant(
    kube: KubeClient,
    name: str,
    url: str,
    writable: Iterable[str],
    list_pods: Callable[[], list[dict[str, Any]]],
) -> DirectPutGrant | None:
    """Grant ETL ``name``'s pods the destination at ``url`` for one job; ``None`` where they cannot write it.

    :param writable: directories the pods may write (:func:`writable_in_pods`)
    :param list_pods: the ETL's pods now (their IPs name the gateways)
    """
    root = local_root(url)
    if root is not None and not _under(os.path.realpath(root), writable):
        return None
    key = etl_put_key(kube.read_secret(gateway_secret_name(name)))
    if not key:
        return None
    bucket, norm = bucket_name(url)
    origins: dict[str, str | None] = {}

    def gateway_of(target_id: str) -> str:
        if not origins.get(target_id):
            origins.clear()
            origins.update(
                (label_of(p, POD_LABEL_TARGET), gateway_origin(p)) for p in list_pods() if not is_deleting(p)
            )
        origin = origins.get(target_id)
        if not origin:
            raise EtlError(
                f"etl {name} has no running pod with a gateway on target {target_id}", etl_name=name
            )
        return origin

    return DirectPutGrant(bucket, gateway_of, SealedTokens(key.encode(), bucket, norm, process_umask()))
