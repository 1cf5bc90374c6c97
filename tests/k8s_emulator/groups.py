"""Serve the named API groups whose resources the emulator stores like core ones (networking.k8s.io/v1).

A resource of :data:`~tests.k8s_emulator.objects.RESOURCES` whose ``group_version`` is not ``v1``
is reached under ``/apis/<group>/<version>/...`` and handled by the generic resource code: create,
get, list, watch, patch, delete and deletecollection, with label selectors. NetworkPolicies are
stored, not enforced (pods of the emulator share this machine's network).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.objects import RESOURCES, ApiError

if TYPE_CHECKING:
    from tests.k8s_emulator.api import Api, Reply, Request, StreamReply

__all__ = ["SERVED_GROUPS", "group_docs", "route_group"]

SERVED_GROUPS: dict[str, str] = {
    gv.split("/")[0]: gv.split("/")[1] for gv in {r.group_version for r in RESOURCES.values()} if "/" in gv
}
"""Group name -> its one version."""


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _group_doc(group: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{SERVED_GROUPS[group]}", "version": SERVED_GROUPS[group]}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def group_docs() -> list[dict[str, Any]]:
    """Return the APIGroup entries of ``/apis`` for the served groups."""
    return [_group_doc(g) for g in sorted(SERVED_GROUPS)]


def _resource_list(group_version: str) -> dict[str, Any]:
    resources = [
        {"name": r.name, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind}
        | {"verbs": list(r.verbs)}
        for r in RESOURCES.values()
        if r.group_version == group_version
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def route_group(api: Api, req: Request, parts: list[str]) -> Reply | StreamReply:
    """Answer ``/apis/<group>[/<version>[/...]]`` for a served group (``parts`` starts at the group)."""
    from tests.k8s_emulator.api import Reply

    group = parts[0]
    if len(parts) == 1:
        return Reply(200, {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group)})
    if parts[1] != SERVED_GROUPS[group]:
        raise _not_found()
    group_version = f"{group}/{parts[1]}"
    if len(parts) == 2:
        return Reply(200, _resource_list(group_version))
    target = api._target(parts[2:])
    if RESOURCES[target.resource].group_version != group_version:
        raise _not_found()
    return api._resource(req, target)
