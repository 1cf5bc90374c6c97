"""The scheduler's part of the kubelet: which Ready node a pod fits, and the least loaded of them.

Node selectors and required node affinity are honoured; an unschedulable pod gets the message the
default scheduler would write (``0/N nodes are available: ...``).
"""

from __future__ import annotations

from typing import Any

from tests.k8s_emulator.objects import node_is_ready

__all__ = ["node_fits", "pick_node"]


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


def node_fits(pod: dict[str, Any], node: dict[str, Any]) -> str | None:
    """Return why ``node`` cannot run ``pod`` (a scheduler reason), or None when it fits."""
    spec = pod.get("spec") or {}
    if not node_is_ready(node):
        return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    if (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable"
    labels = node["metadata"].get("labels") or {}
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(t, node) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def pick_node(
    pod: dict[str, Any], nodes: list[dict[str, Any]], load: dict[str, int]
) -> tuple[str | None, str]:
    """Choose the least loaded node that fits, or return ``(None, unschedulable message)``."""
    fitting: list[str] = []
    reasons: dict[str, int] = {}
    for node in nodes:
        why = node_fits(pod, node)
        if why is None:
            fitting.append(node["metadata"]["name"])
        else:
            reasons[why] = reasons.get(why, 0) + 1
    if fitting:
        return min(fitting, key=lambda n: (load.get(n, 0), n)), ""
    total = len(nodes)
    detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
    message = f"0/{total} nodes are available" + (f": {detail}." if detail else ".")
    message += (
        f" preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )
    return None, message
