"""Run an io:// init-code module for one object: ``python -m airflow_ais_etl.runtime.iomain CODE [FUNC]``.

AIS's io:// contract is "define ``transform()``; it reads stdin and writes stdout". Modules in the
wild do that in three ways: they call ``transform()`` at the top level, under
``if __name__ == "__main__":``, or not at all (they only define it). Running the file as a script
silently produced empty objects for the last kind. This runner executes the module as
``__main__`` exactly once, with the transform function wrapped so that a call made by the module
itself is noticed; if the module never called it, the runner calls it once afterwards:

* ``transform()`` (no parameters) does its own I/O;
* ``transform(data)`` gets stdin's bytes and returns the result, which goes to stdout.

A module without the function is run as a plain script (it does its own I/O at the top level).
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import sys
import types
from typing import Any

__all__ = ["main", "run_module"]

_TRACKER = "__ais_etl_track_transform__"


class _Calls:
    def __init__(self) -> None:
        self.count = 0

    def wrap(self, func: Any) -> Any:
        if not callable(func) or getattr(func, "__ais_etl_tracked__", False):
            return func

        @functools.wraps(func)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return func(*args, **kwargs)

        tracked.__ais_etl_tracked__ = True  # type: ignore[attr-defined]
        return tracked


def _binds(stmt: ast.stmt, name: str) -> bool:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return stmt.name == name
    if isinstance(stmt, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets)
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return isinstance(stmt.target, ast.Name) and stmt.target.id == name
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name.split(".")[0]) == name for a in stmt.names)
    return False


def _instrument(tree: ast.Module, name: str) -> ast.Module:
    """After every top-level statement that binds ``name``, re-bind it to the call-tracking wrapper."""
    body: list[ast.stmt] = []
    for stmt in tree.body:
        body.append(stmt)
        if _binds(stmt, name):
            wrap = ast.parse(f"{name} = {_TRACKER}({name})").body[0]
            body.append(ast.copy_location(wrap, stmt))
    tree.body = body
    return ast.fix_missing_locations(tree)


def _call_transform(func: Any, name: str) -> None:
    try:
        params = inspect.signature(func).parameters.values()
        required = [
            p
            for p in params
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        required = []
    if not required:
        func()
        return
    if len(required) > 1:
        raise SystemExit(
            f"io:// {name}{inspect.signature(func)} takes {len(required)} arguments: define {name}() that "
            f"reads sys.stdin.buffer and writes sys.stdout.buffer, or {name}(data) that returns bytes"
        )
    result = func(sys.stdin.buffer.read())
    if isinstance(result, str):
        result = result.encode()
    if not isinstance(result, (bytes, bytearray, memoryview)):
        raise SystemExit(f"io:// {name}(data) must return bytes, got {type(result).__name__}")
    sys.stdout.buffer.write(result)
    sys.stdout.buffer.flush()


def run_module(path: str, func_name: str = "transform") -> None:
    """Execute ``path`` as ``__main__`` and make sure its transform function runs exactly once."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    tree = _instrument(ast.parse(source, filename=path), func_name)
    module = types.ModuleType("__main__")
    calls = _Calls()
    module.__dict__.update({"__file__": path, "__builtins__": __builtins__, _TRACKER: calls.wrap})
    sys.modules["__main__"] = module
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    exec(compile(tree, path, "exec"), module.__dict__)
    func = module.__dict__.get(func_name)
    if calls.count == 0 and callable(func):
        _call_transform(func, func_name)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``CODE_FILE [FUNC]`` (FUNC defaults to ``$FUNC_TRANSFORM``, else ``transform``)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m airflow_ais_etl.runtime.iomain CODE_FILE [FUNC]")
    func = args[1] if len(args) > 1 else os.environ.get("FUNC_TRANSFORM") or "transform"
    run_module(args[0], func)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
