"""Import the user's module from a file and check its transform function before serving."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

Transform = Callable[..., Any]


class UserCodeError(Exception):
    """The user code cannot serve requests; the message says why (traceback included if any)."""


def load_transform(code_file: Path, module_name: str, func_name: str, *, streaming: bool) -> Transform:
    """Import ``code_file`` as ``module_name`` and return its callable ``func_name``.

    :param streaming: True when CHUNK_SIZE > 0, so the function is called as ``f(reader, writer)``.
    """
    if not code_file.is_file():
        raise UserCodeError(f"user code file {str(code_file)!r} does not exist")
    spec = importlib.util.spec_from_file_location(module_name, code_file)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"cannot import {str(code_file)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UserCodeError(f"importing {str(code_file)!r} failed:\n{_format_exc(exc)}") from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise UserCodeError(f"module {str(code_file)!r} has no function named {func_name!r} (FUNC_TRANSFORM)")
    if not callable(func):
        raise UserCodeError(f"{module_name}.{func_name} is not callable (FUNC_TRANSFORM)")
    check_arity(func, 2 if streaming else 1, func_name)
    return func


def check_arity(func: Transform, nargs: int, func_name: str) -> None:
    """Fail unless ``func`` can be called with ``nargs`` positional arguments."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return  # builtins without a signature: trust the caller
    try:
        sig.bind(*range(nargs))
    except TypeError as exc:
        with contextlib.suppress(TypeError):
            sig.bind(*range(nargs + 2))  # AIS's convention: (..., path, etl_args)
            return
        if nargs == 2:
            hint = "CHUNK_SIZE > 0 requires transform(reader, writer) or transform(reader, writer, path, etl_args)"
        else:
            hint = "CHUNK_SIZE is 0, so the function is called with one argument (or data, path, etl_args)"
        raise UserCodeError(
            f"{func_name}{sig} cannot be called with {nargs} argument(s): {hint} ({exc})"
        ) from exc


def _format_exc(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
