"""Pod Security Standards: what a namespace enforcing ``baseline`` or ``restricted`` says about a Pod.

One pure checker, worded like Pod Security admission (``k8s.io/pod-security-admission``), so the
model can prove its generated pods comply and the emulator can refuse pods as a real API server
would: ``pods "x" is forbidden: violates PodSecurity "restricted:latest": <reason> (<detail>), ...``.
It covers the checks an ETL pod can trip (not AppArmor, SELinux, procMount, sysctls, Windows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_ais_etl.etl.runtimes import RUNTIME_UID

__all__ = [
    "BASELINE",
    "ENFORCE_LABEL",
    "ENFORCE_VERSION_LABEL",
    "LEVELS",
    "PRIVILEGED",
    "RESTRICTED",
    "RESTRICTED_CONTAINER_CONTEXT",
    "forbidden_message",
    "added_container_context",
    "violations",
]

BASELINE = "baseline"
RESTRICTED = "restricted"
PRIVILEGED = "privileged"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"

RESTRICTED_CONTAINER_CONTEXT: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
"""The container-level part of ``restricted`` (the rest may come from the pod's securityContext)."""

_BASELINE_CAPABILITIES = frozenset(
    "AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE SETFCAP SETGID SETPCAP "
    "SETUID SYS_CHROOT".split()
)
_RESTRICTED_VOLUMES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_SECCOMP_OK = ("RuntimeDefault", "Localhost")

Container = Mapping[str, Any]


def _quote(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _who(names: list[str], *, pod_or: bool = False) -> str:
    """``container "a"`` / ``containers "a", "b"`` (prefixed ``pod or `` when the pod may set it)."""
    noun = "container" if len(names) == 1 else "containers"
    return f"{'pod or ' if pod_or else ''}{noun} {_quote(names)}"


def _sc(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, Mapping) else {}


def _containers(spec: Mapping[str, Any]) -> list[Container]:
    """Every container in the admission's order: init containers, containers, ephemeral containers."""
    out: list[Container] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out += [c for c in spec.get(key) or [] if isinstance(c, Mapping)]
    return out


def _names(containers: list[Container]) -> list[str]:
    return [str(c.get("name", "")) for c in containers]


def _host_namespaces(spec: Mapping[str, Any], _: list[Container]) -> str | None:
    set_ = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return f"host namespaces ({', '.join(set_)})" if set_ else None


def _privileged(_: Mapping[str, Any], containers: list[Container]) -> str | None:
    bad = _names([c for c in containers if _sc(c).get("privileged") is True])
    return f"privileged ({_who(bad)} must not set securityContext.privileged=true)" if bad else None


def _added(c: Container) -> list[str]:
    caps = _sc(c).get("capabilities")
    return [str(a) for a in (caps.get("add") or [])] if isinstance(caps, Mapping) else []


def _baseline_capabilities(_: Mapping[str, Any], containers: list[Container]) -> str | None:
    details = []
    for c in containers:
        extra = [a for a in _added(c) if a not in _BASELINE_CAPABILITIES]
        if extra:
            details.append(
                f"{_who(_names([c]))} must not include {_quote(extra)} in securityContext.capabilities.add"
            )
    return f"non-default capabilities ({'; '.join(details)})" if details else None


def _host_path_volumes(spec: Mapping[str, Any], _: list[Container]) -> str | None:
    bad = [
        str(v.get("name")) for v in spec.get("volumes") or [] if isinstance(v, Mapping) and "hostPath" in v
    ]
    if not bad:
        return None
    return f"hostPath volumes ({'volume' if len(bad) == 1 else 'volumes'} {_quote(bad)})"


def _host_ports(_: Mapping[str, Any], containers: list[Container]) -> str | None:
    bad, ports = [], []
    for c in containers:
        used = [p["hostPort"] for p in c.get("ports") or [] if isinstance(p, Mapping) and p.get("hostPort")]
        if used:
            bad.append(str(c.get("name", "")))
            ports += [str(p) for p in used]
    if not bad:
        return None
    verb = "uses" if len(bad) == 1 else "use"
    noun = "hostPort" if len(ports) == 1 else "hostPorts"
    return f"hostPort ({_who(bad)} {verb} {noun} {', '.join(ports)})"


def _baseline_seccomp(spec: Mapping[str, Any], containers: list[Container]) -> str | None:
    details = _unconfined(spec, containers)
    return f"seccompProfile ({'; '.join(details)})" if details else None


def _unconfined(spec: Mapping[str, Any], containers: list[Container]) -> list[str]:
    def kind(obj: Mapping[str, Any]) -> Any:
        profile = _sc(obj).get("seccompProfile")
        return profile.get("type") if isinstance(profile, Mapping) else None

    details = []
    if kind(spec) == "Unconfined":
        details.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = _names([c for c in containers if kind(c) == "Unconfined"])
    if bad:
        details.append(f'{_who(bad)} must not set securityContext.seccompProfile.type to "Unconfined"')
    return details


def _restricted_volumes(spec: Mapping[str, Any], _: list[Container]) -> str | None:
    bad, kinds = [], []
    for v in spec.get("volumes") or []:
        if not isinstance(v, Mapping):
            continue
        kind = next((k for k in v if k != "name" and k not in _RESTRICTED_VOLUMES), None)
        if kind is not None:
            bad.append(str(v.get("name")))
            kinds += [kind] if kind not in kinds else []
    if not bad:
        return None
    subject = f"volume {_quote(bad)} uses" if len(bad) == 1 else f"volumes {_quote(bad)} use"
    noun = "type" if len(kinds) == 1 else "types"
    return f"restricted volume types ({subject} restricted volume {noun} {_quote(kinds)})"


def _allow_privilege_escalation(_: Mapping[str, Any], containers: list[Container]) -> str | None:
    bad = _names([c for c in containers if _sc(c).get("allowPrivilegeEscalation") is not False])
    if not bad:
        return None
    return f"allowPrivilegeEscalation != false ({_who(bad)} must set securityContext.allowPrivilegeEscalation=false)"


def _restricted_capabilities(_: Mapping[str, Any], containers: list[Container]) -> str | None:
    def drops_all(c: Container) -> bool:
        caps = _sc(c).get("capabilities")
        return isinstance(caps, Mapping) and "ALL" in (caps.get("drop") or [])

    details = []
    no_drop = _names([c for c in containers if not drops_all(c)])
    if no_drop:
        details.append(f'{_who(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    for c in containers:
        extra = [a for a in _added(c) if a != "NET_BIND_SERVICE"]
        if extra:
            details.append(
                f"{_who(_names([c]))} must not include {_quote(extra)} in securityContext.capabilities.add"
            )
    return f"unrestricted capabilities ({'; '.join(details)})" if details else None


def _run_as_non_root(spec: Mapping[str, Any], containers: list[Container]) -> str | None:
    pod_value = _sc(spec).get("runAsNonRoot")
    details = []
    if pod_value is False:
        details.append("pod must not set securityContext.runAsNonRoot=false")
    explicit_false = _names([c for c in containers if _sc(c).get("runAsNonRoot") is False])
    if explicit_false:
        details.append(f"{_who(explicit_false)} must not set securityContext.runAsNonRoot=false")
    if pod_value is not True:
        unset = _names([c for c in containers if _sc(c).get("runAsNonRoot") is None])
        if unset:
            details.append(f"{_who(unset, pod_or=True)} must set securityContext.runAsNonRoot=true")
    return f"runAsNonRoot != true ({'; '.join(details)})" if details else None


def _run_as_user(spec: Mapping[str, Any], containers: list[Container]) -> str | None:
    details = []
    if _is_zero(_sc(spec).get("runAsUser")):
        details.append("pod must not set runAsUser=0")
    bad = _names([c for c in containers if _is_zero(_sc(c).get("runAsUser"))])
    if bad:
        details.append(f"{_who(bad)} must not set runAsUser=0")
    return f"runAsUser=0 ({'; '.join(details)})" if details else None


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def _restricted_seccomp(spec: Mapping[str, Any], containers: list[Container]) -> str | None:
    def kind(obj: Mapping[str, Any]) -> Any:
        profile = _sc(obj).get("seccompProfile")
        return profile.get("type") if isinstance(profile, Mapping) else None

    details = []
    pod_kind = kind(spec)
    if pod_kind is not None and pod_kind not in _SECCOMP_OK:
        details.append(f'pod must not set securityContext.seccompProfile.type to "{pod_kind}"')
    bad = [c for c in containers if kind(c) is not None and kind(c) not in _SECCOMP_OK]
    for value in dict.fromkeys(kind(c) for c in bad):
        who = _names([c for c in bad if kind(c) == value])
        details.append(f'{_who(who)} must not set securityContext.seccompProfile.type to "{value}"')
    if pod_kind not in _SECCOMP_OK:
        unset = _names([c for c in containers if kind(c) is None])
        if unset:
            details.append(
                f'{_who(unset, pod_or=True)} must set securityContext.seccompProfile.type to "RuntimeDefault" '
                'or "Localhost"'
            )
    return f"seccompProfile ({'; '.join(details)})" if details else None


# Each level's checks in the admission's order (baseline by check id, then restricted by check id);
# a restricted check replaces the baseline one it tightens (capabilities, volumes, seccomp).
_BASELINE_CHECKS = (
    _baseline_capabilities,
    _host_namespaces,
    _host_path_volumes,
    _host_ports,
    _privileged,
    _baseline_seccomp,
)
_RESTRICTED_CHECKS = (
    _host_namespaces,
    _host_ports,
    _privileged,
    _allow_privilege_escalation,
    _restricted_capabilities,
    _restricted_volumes,
    _run_as_non_root,
    _run_as_user,
    _restricted_seccomp,
)


def violations(pod: Mapping[str, Any], level: str = RESTRICTED) -> list[str]:
    """Return why ``pod`` breaks Pod Security ``level``, one ``reason (detail)`` per failed check.

    :param pod: a Pod (dict); a bare PodSpec is accepted too
    :param level: ``privileged`` (nothing to check), ``baseline`` or ``restricted``
    :return: the violations in the API server's wording and order; empty when the pod complies
    """
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r} (expecting one of {', '.join(LEVELS)})")
    raw = pod["spec"] if "spec" in pod else pod
    spec: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    checks = {BASELINE: _BASELINE_CHECKS, RESTRICTED: _RESTRICTED_CHECKS}.get(level, ())
    containers = _containers(spec)
    return [v for check in checks if (v := check(spec, containers)) is not None]


def forbidden_message(name: str, found: list[str], level: str = RESTRICTED, version: str = "latest") -> str:
    """Return the API server's message for a pod refused by Pod Security admission.

    :param name: the pod's name
    :param found: :func:`violations` of the pod
    :param version: the namespace's ``enforce-version`` label (``latest`` when unset)
    """
    return f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": {", ".join(found)}'


def added_container_context(pod_spec: Mapping[str, Any], uid: int = RUNTIME_UID) -> dict[str, Any]:
    """Return the securityContext of a container we add to a pod (the gateway sidecar): ``restricted``.

    Only what the pod's own securityContext leaves open is set, so the user's choices (uid, seccomp
    profile) hold for our container too and a compliant pod stays compliant.

    :param pod_spec: the pod's spec
    :param uid: run as this user when the pod names none (or root)
    """
    pod_sc = _sc(pod_spec)
    out: dict[str, Any] = {
        **RESTRICTED_CONTAINER_CONTEXT,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    run_as = pod_sc.get("runAsUser")
    if run_as is None or _is_zero(run_as):
        out["runAsUser"] = uid
    profile = pod_sc.get("seccompProfile")
    if not (isinstance(profile, Mapping) and profile.get("type") in _SECCOMP_OK):
        out["seccompProfile"] = {"type": "RuntimeDefault"}
    return out
