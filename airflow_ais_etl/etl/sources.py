"""Where an ETL's code or Pod spec comes from: text, a file, or a Python function.

The one place of the model that reads files (the ones the user names), so that operators, the CLI
and plain Python resolve sources the same way; nothing here imports Airflow.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from airflow_ais_etl.etl.coerce import as_str_list, describe
from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["callable_source", "code_text", "requirements_text", "spec_text"]

_SPEC_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def callable_source(func: Callable[..., Any]) -> tuple[str, str]:
    """Return ``(module source, function name)`` that ships ``func`` as the ETL's transform module.

    The function's own source is taken (dedented, decorators stripped), so it must import what it
    uses inside its body and may not close over local variables.
    """
    func = inspect.unwrap(func)
    if not inspect.isfunction(func):
        raise ValidationError(
            f"python_callable must be a plain function defined with def, got {type(func).__name__}"
        )
    if func.__name__ == "<lambda>":
        raise ValidationError(
            "python_callable cannot be a lambda: define the transform with def in the DAG file"
        )
    if func.__code__.co_freevars:
        raise ValidationError(
            f"python_callable {func.__name__} uses variables of an enclosing function "
            f"({', '.join(func.__code__.co_freevars)}): only its source is shipped, so define it at module "
            "level and import what it needs inside its body"
        )
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise ValidationError(f"cannot read the source of python_callable {func.__name__}: {exc}") from exc
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        raise ValidationError(
            f"python_callable {func.__name__} must be a def function (not async, not a class)"
        )
    body = "".join(source.splitlines(keepends=True)[node.lineno - 1 :])
    return (body if body.endswith("\n") else body + "\n"), func.__name__


def code_text(
    code: Any = None, code_file: Any = None, python_callable: Any = None, transform: Any = None
) -> tuple[str, str]:
    """Pick the ETL code from exactly one source; return ``(code, transform function name)``.

    :param code: module source text
    :param code_file: path of that module
    :param python_callable: a function whose source becomes the module and whose name the transform
    :param transform: the transform function's name in ``code``/``code_file`` (default ``transform``)
    """
    given = [
        n for n, v in (("code", code), ("code_file", code_file), ("python_callable", python_callable)) if v
    ]
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of code, code_file or python_callable"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if transform is not None and not isinstance(transform, str):
        raise ValidationError(f"transform must be a function name, got {describe(transform)}")
    if python_callable:
        if not callable(python_callable):
            raise ValidationError(f"python_callable must be a function, got {describe(python_callable)}")
        if transform not in (None, "", "transform"):
            raise ValidationError(
                "transform names the function in code/code_file; python_callable sets it itself"
            )
        return callable_source(python_callable)
    name = transform or "transform"
    if code_file:
        return _read_file("code_file", code_file), name
    if not isinstance(code, str):
        raise ValidationError(f"code must be the module's source text, got {describe(code)}")
    return code, name


def requirements_text(dependencies: Any) -> str | None:
    """Return pip requirements text from a requirements text or a list of requirement strings."""
    if dependencies is None or isinstance(dependencies, str):
        return dependencies
    try:
        items = [d.strip() for d in as_str_list("dependencies", dependencies) if d.strip()]
    except ValidationError as exc:
        raise ValidationError(f"{exc} (give requirement strings or a requirements text)") from None
    return "\n".join(items) + "\n" if items else ""


def spec_text(spec: Any) -> str:
    """Return Pod spec text from a dict, a YAML/JSON string, or the path of a YAML/JSON file."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        raise ValidationError(
            "spec is required: a Pod spec dict, its YAML/JSON text, or a .yaml/.json file path"
        )
    if isinstance(spec, Mapping):
        return yaml.safe_dump(dict(spec), sort_keys=False)
    if not isinstance(spec, str):
        raise ValidationError(f"spec must be a dict, YAML/JSON text or a file path, got {describe(spec)}")
    text = spec.strip()
    if "\n" not in text and text.lower().endswith(_SPEC_FILE_SUFFIXES):
        return _read_file("spec file", text)
    return spec


def _read_file(what: str, path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise ValidationError(f"{what} must be a path, got {describe(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ValidationError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {what} {str(path)!r}: {exc}") from None
