"""The Pod of an init-code ETL, built from its runtime's template shipped in ``podspecs/``."""

from __future__ import annotations

import copy
import functools
import importlib.resources
import re
from typing import TYPE_CHECKING, Any

import yaml

from airflow_ais_etl.etl.constants import HPUSH, IO
from airflow_ais_etl.etl.errors import ValidationError, go_quote
from airflow_ais_etl.etl.runtimes import RUNTIME_SERVER_COMMAND, RUNTIMES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.etl.msg import InitCodeMsg

__all__ = ["IO_CODE_COMMAND", "code_env", "code_pod_spec", "load_template"]

IO_CODE_COMMAND = ['python -m airflow_ais_etl.runtime.iomain "$AIS_ETL_CODE_DIR/code.py"']
"""Container 0's command for io:// init code: the io server runs it (``bash -c``) per object; the runner calls ``transform`` when the module does not."""

_PLACEHOLDER = re.compile(r"<[A-Z_]+>")


def load_template(name: str) -> str:
    """Read a pod template shipped in the package's ``podspecs/``.

    :param name: file name, e.g. ``runtime.yaml``
    :return: the template text
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValidationError(
            f"invalid template name {go_quote(name)}: expecting a file name like runtime.yaml"
        )
    # airflow_ais_etl/podspecs is the top-level podspecs/ folder: a symlink in the source tree, a real
    # directory in the wheel; either way it is read from the installed package.
    resource = importlib.resources.files("airflow_ais_etl") / "podspecs" / name
    if not resource.is_file():
        raise FileNotFoundError(f"pod template {name!r} not found in airflow_ais_etl/podspecs")
    return resource.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=8)
def _parsed_template(name: str) -> dict[str, Any]:
    pod = yaml.safe_load(load_template(name))
    if not isinstance(pod, dict):
        raise TypeError(f"pod template {name!r} is not a mapping")
    return pod


def _fill(node: Any, values: Mapping[str, Any]) -> Any:
    """Replace placeholder strings (and ``["<X>"]`` lists) in a parsed template, recursively."""
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        if len(node) == 1 and isinstance(node[0], str) and node[0] in values:
            replacement = values[node[0]]
            if isinstance(replacement, list):
                return list(replacement)
        return [_fill(item, values) for item in node]
    if isinstance(node, str) and node in values:
        return values[node]
    return node


def _leftover_placeholders(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [p for value in node.values() for p in _leftover_placeholders(value)]
    if isinstance(node, list):
        return [p for item in node for p in _leftover_placeholders(item)]
    if isinstance(node, str) and _PLACEHOLDER.fullmatch(node):
        return [node]
    return []


def code_pod_spec(msg: InitCodeMsg) -> dict[str, Any]:
    """Build the Pod for an init-code message from its runtime's template.

    The template is parsed once and values are set in the dict, so no function name or other value
    can break the YAML (the reference substitutes text).

    :param msg: a validated init-code message
    :return: the Pod as a dict (name = ETL name; :func:`prepare_pod` renames it per target)
    """
    runtime = RUNTIMES.get(msg.runtime)
    if runtime is None:
        raise ValidationError(
            f"unsupported runtime {go_quote(msg.runtime)} (supported: [{' '.join(sorted(RUNTIMES))}])",
            etl_name=msg.name,
        )
    comm = msg.comm_type or HPUSH
    values: dict[str, Any] = {
        "<NAME>": msg.name,
        "<IMAGE>": runtime.image,
        "<COMMAND>": list(IO_CODE_COMMAND if comm == IO else RUNTIME_SERVER_COMMAND),
        "<FUNC_TRANSFORM>": msg.transform,
        "<COMM_TYPE>": comm,
        "<CHUNK_SIZE>": str(msg.chunk_size) if msg.chunk_size > 0 else "",
        "<ARG_TYPE>": msg.arg_type,
        "<FLAGS>": str(msg.flags) if msg.flags > 0 else "",
    }
    pod: dict[str, Any] = _fill(copy.deepcopy(_parsed_template(runtime.template)), values)
    leftover = _leftover_placeholders(pod)
    if leftover:
        raise RuntimeError(f"pod template {runtime.template!r} has unfilled placeholders {leftover}")
    return pod


def code_env(msg: InitCodeMsg) -> dict[str, str]:
    """Return the env that carries the code and requirements into the pod.

    :param msg: an init-code message
    :return: ``{"AISTORE_CODE": code, "AISTORE_DEPS": requirements or ""}``
    """
    return {"AISTORE_CODE": msg.code, "AISTORE_DEPS": msg.dependencies or ""}
