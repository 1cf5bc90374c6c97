"""The scheduler's part of the kubelet: which Ready node a pod fits, and the least loaded of them.

The default scheduler's filters, in its order: unschedulable nodes, taints (NoSchedule/NoExecute)
against the pod's tolerations, node selectors and required node affinity, then resource requests
against what the node can allocate minus what its pods request. An unschedulable pod gets the
message the default scheduler would write (``0/N nodes are available: ...``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from tests.k8s_emulator.objects import node_is_ready

__all__ = ["Requests", "node_fits", "pick_node", "pod_requests"]

Requests = dict[str, Decimal]
"""Resource name → requested amount (CPU in cores, memory in bytes)."""
_NOT_HELPFUL = "Preemption is not helpful for scheduling"
_NO_VICTIMS = "No preemption victims found for incoming pod"


def _term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    labels = node["metadata"].get("labels") or {}
    for expr in term.get("matchExpressions") or []:
        if not _expr_matches(expr, labels.get(expr.get("key")), expr.get("key") in labels):
            return False
    for expr in term.get("matchFields") or []:
        if expr.get("key") == "metadata.name" and not _expr_matches(expr, node["metadata"]["name"], True):
            return False
    return True


def _expr_matches(expr: dict[str, Any], value: str | None, present: bool) -> bool:
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            return int(str(value)) > int(values[0]) if op == "Gt" else int(str(value)) < int(values[0])
        except ValueError:
            return False
    return False


def _container_requests(container: dict[str, Any]) -> Requests:
    requests = (container.get("resources") or {}).get("requests") or {}
    return {str(k): Decimal(parse_quantity(v)) for k, v in requests.items()}


def pod_requests(pod: dict[str, Any]) -> Requests:
    """Return what a pod requests: its containers (and sidecars) together, or its largest init container."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    running = list(spec.get("containers") or []) + [c for c in inits if c.get("restartPolicy") == "Always"]
    total: Requests = {}
    for c in running:
        for k, v in _container_requests(c).items():
            total[k] = total.get(k, Decimal(0)) + v
    for c in inits:
        if c.get("restartPolicy") != "Always":
            for k, v in _container_requests(c).items():
                total[k] = max(total.get(k, Decimal(0)), v)
    return total


def _tolerated(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        operator = t.get("operator") or "Equal"
        if not t.get("key"):
            if operator == "Exists":
                return True
            continue
        if t.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _insufficient(pod: dict[str, Any], node: dict[str, Any], used: Requests) -> list[str]:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    out = []
    for name, amount in sorted(pod_requests(pod).items()):
        if amount <= 0:
            continue
        limit = allocatable.get(name)
        free = Decimal(parse_quantity(limit)) - used.get(name, Decimal(0)) if limit is not None else None
        if free is None or amount > free:
            out.append(f"Insufficient {name}")
    return out


def node_fits(pod: dict[str, Any], node: dict[str, Any], used: Requests | None = None) -> list[str]:
    """Return why ``node`` cannot run ``pod`` (scheduler reasons; empty when it fits).

    :param used: what the pods already bound to the node request
    """
    spec = pod.get("spec") or {}
    if not node_is_ready(node):
        return ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    if (node.get("spec") or {}).get("unschedulable"):
        return ["node(s) were unschedulable"]
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(taint, tolerations):
            return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"]
    labels = node["metadata"].get("labels") or {}
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return ["node(s) didn't match Pod's node affinity/selector"]
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(t, node) for t in terms):
        return ["node(s) didn't match Pod's node affinity/selector"]
    return _insufficient(pod, node, used or {})


def pick_node(
    pod: dict[str, Any],
    nodes: list[dict[str, Any]],
    load: dict[str, int],
    used: dict[str, Requests] | None = None,
) -> tuple[str | None, str]:
    """Choose the least loaded node that fits, or return ``(None, unschedulable message)``.

    :param load: pods per node
    :param used: requests of the pods bound to each node
    """
    fitting: list[str] = []
    reasons: dict[str, int] = {}
    helpless = 0  # nodes where evicting pods would not help
    for node in nodes:
        name = node["metadata"]["name"]
        why = node_fits(pod, node, (used or {}).get(name))
        if not why:
            fitting.append(name)
            continue
        for reason in why:
            reasons[reason] = reasons.get(reason, 0) + 1
        helpless += not all(r.startswith("Insufficient ") for r in why)
    if fitting:
        return min(fitting, key=lambda n: (load.get(n, 0), n)), ""
    total = len(nodes)
    detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
    message = f"0/{total} nodes are available" + (f": {detail}." if detail else ".")
    preemption = [f"{total - helpless} {_NO_VICTIMS}"] if total - helpless else []
    preemption += [f"{helpless} {_NOT_HELPFUL}"] if helpless or not total else []
    return None, f"{message} preemption: 0/{total} nodes are available: {', '.join(preemption)}."
