"""PersistentVolumeClaims in the emulator: a claim resolves to a local directory, or keeps its pod Pending.

A claim is bound when its ``spec.volumeName`` names a PersistentVolume (or a PersistentVolume's
``spec.claimRef`` names the claim); the volume's ``hostPath.path`` or ``local.path`` is the directory
the pod's processes use for it. Pods run as local processes on this machine, so a claim is mounted
where its directory is: tests create the volume at the directory they mount it at. ``readOnly`` is
not enforced (no mount namespaces here).

As the real scheduler, a pod whose claim does not exist, or is not bound, is not scheduled: it stays
Pending with ``persistentvolumeclaim "x" not found`` (or ``unbound immediate
PersistentVolumeClaims``) in its PodScheduled condition and FailedScheduling event, and is
scheduled as soon as the claim appears.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.scheduler import Requests, pick_node

if TYPE_CHECKING:
    from tests.k8s_emulator.store import Store

__all__ = ["claim_problem", "claim_volume_dirs", "pick_node_with_claims"]


def _claims(pod: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ``(volume name, claim name)`` of the pod's PVC volumes."""
    out = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        claim = vol.get("persistentVolumeClaim")
        if claim:
            out.append((str(vol["name"]), str(claim.get("claimName", ""))))
    return out


def _volume_of(store: Store, namespace: str, claim: dict[str, Any]) -> dict[str, Any] | None:
    """Return the PersistentVolume bound to ``claim``, or None."""
    name = (claim.get("spec") or {}).get("volumeName")
    if name:
        return store.find("persistentvolumes", "", str(name))
    volumes, _ = store.list("persistentvolumes")
    for pv in volumes:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("name") == claim["metadata"]["name"] and ref.get("namespace", namespace) == namespace:
            return pv
    return None


def _directory(pv: dict[str, Any]) -> Path | None:
    spec = pv.get("spec") or {}
    source = spec.get("hostPath") or spec.get("local") or {}
    return Path(source["path"]) if source.get("path") else None


def claim_problem(store: Store, namespace: str, pod: dict[str, Any]) -> str | None:
    """Return why the pod's claims keep it from being scheduled (the scheduler's words), or None."""
    for _volume, name in _claims(pod):
        claim = store.find("persistentvolumeclaims", namespace, name)
        if claim is None:
            return f'persistentvolumeclaim "{name}" not found'
        pv = _volume_of(store, namespace, claim)
        if pv is None or _directory(pv) is None:
            return "pod has unbound immediate PersistentVolumeClaims"
    return None


def claim_volume_dirs(store: Store, namespace: str, pod: dict[str, Any]) -> dict[str, Path]:
    """Return the local directory of each PVC volume of ``pod`` (by volume name); skip unbound ones."""
    out = {}
    for volume, name in _claims(pod):
        claim = store.find("persistentvolumeclaims", namespace, name)
        pv = _volume_of(store, namespace, claim) if claim else None
        directory = _directory(pv) if pv else None
        if directory is not None:
            out[volume] = directory
    return out


def pick_node_with_claims(
    store: Store,
    namespace: str,
    pod: dict[str, Any],
    nodes: list[dict[str, Any]],
    load: dict[str, int],
    used: dict[str, Requests] | None = None,
) -> tuple[str | None, str]:
    """Pick a node as :func:`~tests.k8s_emulator.scheduler.pick_node`, after checking the pod's claims."""
    problem = claim_problem(store, namespace, pod)
    if problem is None:
        return pick_node(pod, nodes, load, used)
    total = len(nodes)
    return None, (
        f"0/{total} nodes are available: {problem}. preemption: 0/{total} nodes are available: "
        f"{total} Preemption is not helpful for scheduling."
    )
