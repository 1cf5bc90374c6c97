"""``${VAR}`` and ``${VAR:-default}`` placeholders in AIS transformer specs, filled from the environment.

AIStore's sample specs (``pod.yaml``, ``etl_spec.yaml`` in NVIDIA/ais-etl) carry shell-style
placeholders such as ``communication_type: ${COMMUNICATION_TYPE:-"\\"hpull://\\""}`` that its
READMEs expand with the shell before ``ais etl init``. We expand them ourselves, on the parsed
YAML values, so the result is what the shell would have produced and YAML cannot be broken by a
value: the variable's value when it is set and not empty, else the default with the shell's
quote removal (``"\\"hpull://\\""`` → ``"hpull://"``), and a default that is itself a quoted YAML
string is unquoted once more (→ ``hpull://``) as YAML would read the expanded text. A ``${VAR}``
with no default and no value is an error that names the variable: an empty value would silently
change the spec. ``$VAR`` without braces and Kubernetes' ``$(VAR)`` are left alone.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["expand_placeholders", "expand_text"]

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)((?:[^{}]|\{[^{}]*\})*))?\}")


def _unquote_default(word: str) -> str:
    """Apply the shell's quote removal to a ``${VAR:-word}`` default (``"{}"`` → ``{}``)."""
    if not any(q in word for q in "\"'\\"):
        return word
    try:
        parts = shlex.split(word, posix=True)
    except ValueError as exc:
        raise ValidationError(f"placeholder default {word!r} has unbalanced quotes ({exc})") from None
    return " ".join(parts)


def _yaml_unquote(text: str) -> str:
    """Read a quoted YAML scalar (``"hpull://"``) as YAML would; anything else stays as it is."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        try:
            value = yaml.safe_load(stripped)
        except yaml.YAMLError:
            return text
        if isinstance(value, str):
            return value
    return text


def expand_text(text: str, env: Mapping[str, str], *, where: str = "") -> str:
    """Expand every ``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` in one string value.

    :param text: a string value of the spec
    :param env: the variables (usually ``os.environ``)
    :param where: the value's path in the spec, for the error message
    :raises ValidationError: a ``${VAR}`` without default whose variable is not set
    """
    whole = _PLACEHOLDER.fullmatch(text.strip()) is not None

    def sub(m: re.Match[str]) -> str:
        var, op, default = m.group(1), m.group(2), m.group(3)
        value = env.get(var)
        if op is None:
            if value is None:
                at = f" (at {where})" if where else ""
                raise ValidationError(
                    f"placeholder ${{{var}}}{at} has no value: set {var} in the environment, or give a "
                    f"default as ${{{var}:-value}}"
                )
            return value
        if value is not None and (value or op == "-"):
            return value
        expanded = _unquote_default(default or "")
        return _yaml_unquote(expanded) if whole else expanded

    return _PLACEHOLDER.sub(sub, text)


def expand_placeholders(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Return a copy of a parsed YAML document with placeholders expanded in every string (keys too)."""
    if isinstance(node, Mapping):
        return {
            (expand_text(k, env, where=path) if isinstance(k, str) else k): expand_placeholders(
                v, env, f"{path}.{k}" if path else str(k)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [expand_placeholders(item, env, f"{path}[{i}]") for i, item in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        return expand_text(node, env, where=path)
    return node
