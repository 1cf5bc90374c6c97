"""Turn rendered operator fields into service arguments; every problem is a ValueError or TypeError.

Pure functions (file reads aside), so the operators stay thin and the rules are easy to test.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

__all__ = [
    "as_bool",
    "as_float",
    "as_int",
    "as_str_map",
    "callable_source",
    "dependencies_text",
    "resolve_code",
    "resolve_spec",
]


def as_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int (rendered templates may give strings)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got a bool")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_float(name: str, value: Any, *, positive: bool = True) -> float:
    """Return ``value`` as a float (rendered templates may give strings)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, got a bool")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__} {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def as_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a bool, accepting the strings a template renders (``True``/``false``/``1``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return value.strip().lower() in ("true", "1", "yes")
    raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")


def as_str_map(name: str, value: Any) -> dict[str, str]:
    """Return a ``{str: str}`` mapping (environment variables, extension maps)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ValueError(f"{name} must be a mapping or its JSON text, got {value!r}") from None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of strings, got {type(value).__name__}")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} keys must be non-empty strings, got {key!r}")
        if isinstance(item, (dict, list, tuple, set)) or item is None:
            raise TypeError(f"{name}[{key!r}] must be a string, got {type(item).__name__}")
        out[key] = str(item)
    return out


def callable_source(func: Callable[..., Any]) -> tuple[str, str]:
    """Return ``(module source, function name)`` that ships ``func`` as the ETL's transform module.

    The function's own source is taken (dedented, decorators stripped), so it must import what it
    uses inside its body and may not close over local variables.
    """
    func = inspect.unwrap(func)
    if not inspect.isfunction(func):
        raise TypeError(
            f"python_callable must be a plain function defined with def, got {type(func).__name__}"
        )
    if func.__name__ == "<lambda>":
        raise TypeError("python_callable cannot be a lambda: define the transform with def in the DAG file")
    if func.__code__.co_freevars:
        raise TypeError(
            f"python_callable {func.__name__} uses variables of an enclosing function "
            f"({', '.join(func.__code__.co_freevars)}): only its source is shipped, so define it at module "
            "level and import what it needs inside its body"
        )
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise ValueError(f"cannot read the source of python_callable {func.__name__}: {exc}") from exc
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        raise TypeError(f"python_callable {func.__name__} must be a def function (not async, not a class)")
    lines = source.splitlines(keepends=True)
    body = "".join(lines[node.lineno - 1 :])
    return (body if body.endswith("\n") else body + "\n"), func.__name__


def resolve_code(
    code: str | None,
    code_file: str | None,
    python_callable: Callable[..., Any] | None,
    transform: str | None,
) -> tuple[str, str]:
    """Pick the ETL code from exactly one source; return ``(code, transform function name)``."""
    given = [
        n for n, v in (("code", code), ("code_file", code_file), ("python_callable", python_callable)) if v
    ]
    if len(given) != 1:
        raise ValueError(
            "give exactly one of code, code_file or python_callable"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if python_callable is not None:
        if not callable(python_callable):
            raise TypeError(f"python_callable must be callable, got {type(python_callable).__name__}")
        if transform not in (None, "", "transform"):
            raise ValueError("transform names the function in code/code_file; python_callable sets it itself")
        return callable_source(python_callable)
    name = transform or "transform"
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"transform must be a Python identifier, got {name!r}")
    if code_file:
        if not isinstance(code_file, str):
            raise TypeError(f"code_file must be a path string, got {type(code_file).__name__}")
        if not os.path.isfile(code_file):
            raise ValueError(f"code_file {code_file!r} does not exist or is not a file")
        with open(code_file, encoding="utf-8") as f:
            return f.read(), name
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    return code, name


def dependencies_text(dependencies: str | Sequence[str] | None) -> str | None:
    """Return requirements text from a list of requirement strings or a requirements text."""
    if dependencies is None:
        return None
    if isinstance(dependencies, str):
        return dependencies
    if isinstance(dependencies, Sequence) and all(isinstance(d, str) for d in dependencies):
        items = [d.strip() for d in dependencies if d.strip()]
        return "\n".join(items) + "\n" if items else ""
    raise TypeError("dependencies must be a list of requirement strings or a requirements text")


_SPEC_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def resolve_spec(spec: str | Mapping[str, Any] | None) -> str:
    """Return Pod spec text from a dict, a YAML/JSON string, or the path of a YAML/JSON file."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        raise ValueError("spec is required: a Pod spec dict, its YAML/JSON text, or a .yaml/.json file path")
    if isinstance(spec, Mapping):
        return yaml.safe_dump(dict(spec), sort_keys=False)
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a dict, a string or a file path, got {type(spec).__name__}")
    text = spec.strip()
    if "\n" not in text and text.lower().endswith(_SPEC_FILE_SUFFIXES):
        if not os.path.isfile(text):
            raise ValueError(f"spec file {text!r} does not exist")
        with open(text, encoding="utf-8") as f:
            return f.read()
    return spec
