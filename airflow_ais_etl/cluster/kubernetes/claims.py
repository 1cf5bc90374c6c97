"""Mount existing PersistentVolumeClaims where this machine's bucket roots are, instead of hostPath.

The connection maps directories of the Airflow workers (local bucket roots, ``fqn`` paths, the
gateway's bucket map) to claims that hold the same files on the cluster (``volume_claims``:
``{"/data": "datasets-pvc"}``); each ETL pod mounts each claim at that same path, so a path means
the same file on both sides. PVC volumes are allowed by every Pod Security level, unlike hostPath.

Read-only by default, on the volume and on every mount. Sources are read by the transformer
(``fqn``) and the gateway sidecar (hpull/hrev); destinations are written by the Airflow worker from
the transformer's response, and the bucket map by the worker too. A claim may be made writable
(``{"claim_name": ..., "read_only": false}``) for a transformer that writes files of its own there,
and for direct put: the gateway sidecar writes destinations under writable claims itself
(:mod:`~airflow_ais_etl.cluster.kubernetes.directput`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.podoptions import check_dns_name

__all__ = ["VolumeClaim", "check_volume_claims", "claims_of", "mount_claims"]

_VOLUME_PREFIX = "ais-etl-claim-"


@dataclass(frozen=True)
class VolumeClaim:
    """One claim mounted at ``path`` (a directory of the workers) in every container of an ETL pod."""

    path: str
    claim_name: str
    read_only: bool = True


def _entry(path: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"claim_name": value}
    if not isinstance(value, Mapping):
        raise ValueError(f"claim of {path!r} must be a claim name or an object, got {describe(value)}")
    unknown = sorted(map(str, set(value) - {"claim_name", "read_only"}))
    if unknown:
        raise ValueError(
            f"claim of {path!r} has unknown key(s) {', '.join(unknown)}: expecting claim_name, read_only"
        )
    read_only = value.get("read_only", True)
    if not isinstance(read_only, bool):
        raise ValueError(f"read_only of {path!r} must be true or false, got {describe(read_only)}")
    return {"claim_name": check_dns_name("claim", value.get("claim_name")), "read_only": read_only}


def check_volume_claims(claims: Any) -> dict[str, dict[str, Any]]:
    """Return ``{path: {"claim_name", "read_only"}}``: absolute, distinct, non-nested paths, valid names.

    A value may be just the claim name (read-only). Raise ValueError saying what is wrong.
    """
    if not isinstance(claims, Mapping):
        raise ValueError(f"expecting an object of directory -> claim name, got {describe(claims)}")
    out: dict[str, dict[str, Any]] = {}
    for raw_path, value in claims.items():
        path = posixpath.normpath(str(raw_path).strip())
        if not path.startswith("/") or path == "/":
            raise ValueError(
                f"{raw_path!r} must be an absolute directory other than / (where the claim is mounted)"
            )
        if path in out:
            raise ValueError(f"directory {path!r} is given twice")
        out[path] = _entry(path, value)
    for path in out:
        inside = [p for p in out if p != path and p.startswith(path + "/")]
        if inside:
            raise ValueError(f"claim directories may not nest: {inside[0]!r} lies under {path!r}")
    return out


def claims_of(claims: Mapping[str, Mapping[str, Any]] | None) -> tuple[VolumeClaim, ...]:
    """Return the checked ``volume_claims`` setting as claims, sorted by path."""
    checked = check_volume_claims(claims or {})
    return tuple(VolumeClaim(p, c["claim_name"], c["read_only"]) for p, c in sorted(checked.items()))


def mount_claims(spec: dict[str, Any], claims: tuple[VolumeClaim, ...]) -> None:
    """Add a PVC volume per claim and mount it at its path in every container of ``spec`` (in place)."""
    volumes = list(spec.get("volumes") or [])
    mounts = []
    for i, claim in enumerate(claims):
        name = f"{_VOLUME_PREFIX}{i}"
        volumes.append(
            {
                "name": name,
                "persistentVolumeClaim": {"claimName": claim.claim_name, "readOnly": claim.read_only},
            }
        )
        mounts.append({"name": name, "mountPath": claim.path, "readOnly": claim.read_only})
    if not claims:
        return
    spec["volumes"] = volumes
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        c["volumeMounts"] = list(c.get("volumeMounts") or []) + [dict(m) for m in mounts]
