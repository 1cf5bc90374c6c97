"""Hide secret values in what we show: literal ``env`` values of a Pod spec become ``***``.

``view`` (CLI, API) prints the init message; a spec often carries credentials as literal env values,
and what a command prints ends up in terminals, CI logs and task logs that others read. The stored
message keeps the values (the pods need them); only the shown copy is masked.
"""

from __future__ import annotations

import dataclasses

import yaml

from airflow_ais_etl.etl.msg import InitMsg, InitSpecMsg

__all__ = ["MASK", "mask_msg", "mask_spec_env"]

MASK = "***"


def mask_spec_env(spec: str) -> str:
    """Return ``spec`` (YAML/JSON) with every literal env value replaced by :data:`MASK`."""
    try:
        doc = yaml.safe_load(spec)
    except yaml.YAMLError:
        return MASK  # cannot tell secrets from the rest: show nothing of it
    if not isinstance(doc, dict):
        return spec
    pod_spec = doc.get("spec")
    if not isinstance(pod_spec, dict):
        return spec
    changed = False
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or []:
            for item in (container.get("env") or []) if isinstance(container, dict) else []:
                if isinstance(item, dict) and "value" in item:
                    item["value"] = MASK
                    changed = True
    return yaml.safe_dump(doc, sort_keys=False) if changed else spec


def mask_msg(msg: InitMsg) -> InitMsg:
    """Return ``msg`` as it may be shown: a spec message with its env values masked."""
    if isinstance(msg, InitSpecMsg):
        return dataclasses.replace(msg, spec=mask_spec_env(msg.spec))
    return msg
