"""Where an ETL's code and spec come from: text, files and DAG functions, resolved without Airflow."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.sources import callable_source, code_text, requirements_text, spec_text

if TYPE_CHECKING:
    from pathlib import Path


def shout(data: bytes) -> bytes:
    import zlib

    return zlib.compress(data.upper())


def _decorate(func):  # type: ignore[no-untyped-def]
    @functools.wraps(func)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return func(*args, **kwargs)

    return wrapper


@_decorate
def decorated(data: bytes) -> bytes:
    return data[::-1]


def test_callable_source_ships_only_the_function() -> None:
    source, name = callable_source(shout)
    assert name == "shout"
    assert source.startswith("def shout(data: bytes) -> bytes:\n")
    assert "import zlib" in source
    assert "_decorate" not in source
    namespace: dict = {}
    exec(compile(source, "code.py", "exec"), namespace)
    assert namespace["shout"](b"ab") == shout(b"ab")


def test_callable_source_strips_decorators_and_dedents() -> None:
    source, name = callable_source(decorated)
    assert name == "decorated"
    assert source.startswith("def decorated(")

    def nested(data: bytes) -> bytes:
        return data

    source, _ = callable_source(nested)
    assert source.startswith("def nested(")


def test_callable_source_rejects_lambdas_and_closures() -> None:
    with pytest.raises(ValidationError, match="lambda"):
        callable_source(lambda data: data)
    factor = 2

    def closure(data: bytes) -> bytes:
        return data * factor

    with pytest.raises(ValidationError, match="factor"):
        callable_source(closure)


def test_code_text_sources(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text("def go(b):\n    return b\n")
    assert code_text(code_file=str(path), transform="go") == (path.read_text(), "go")
    assert code_text("def transform(b): return b")[1] == "transform"
    with pytest.raises(ValidationError, match="exactly one"):
        code_text("x", str(path))
    with pytest.raises(ValidationError, match="exactly one"):
        code_text()
    with pytest.raises(ValidationError, match="does not exist"):
        code_text(code_file=str(tmp_path / "nope.py"))
    with pytest.raises(ValidationError, match="sets it itself"):
        code_text(python_callable=shout, transform="other")


def test_spec_text_forms(tmp_path: Path) -> None:
    spec = {"apiVersion": "v1", "kind": "Pod"}
    assert "kind: Pod" in spec_text(spec)
    path = tmp_path / "pod.yaml"
    path.write_text("kind: Pod\n")
    assert spec_text(str(path)) == "kind: Pod\n"
    assert spec_text('{"kind": "Pod"}') == '{"kind": "Pod"}'
    with pytest.raises(ValidationError, match="does not exist"):
        spec_text(str(tmp_path / "missing.yaml"))
    with pytest.raises(ValidationError, match="got int 42"):
        spec_text(42)


def test_requirements_text_from_a_list_or_text() -> None:
    assert requirements_text(None) is None
    assert requirements_text("numpy\n") == "numpy\n"
    assert requirements_text([" zstandard ", "", "numpy==2.0"]) == "zstandard\nnumpy==2.0\n"
    assert requirements_text([]) == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], r"dependencies\[0\] must be a string, got int 1"),
        (["numpy", None], r"dependencies\[1\] must be a string, got NoneType None"),
        (42, "dependencies must be a list of strings, got int 42"),
    ],
)
def test_requirements_text_says_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        requirements_text(value)
