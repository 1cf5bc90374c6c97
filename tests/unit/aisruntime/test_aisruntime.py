"""The init_class runtime's pure parts: which image runs it, workers, packages, the payload's errors."""

from __future__ import annotations

import base64
import pickle
import sys
import types
from typing import Any

import cloudpickle
import pytest
from aistore.sdk.etl.webserver.utils import serialize_class

from airflow_ais_etl.aisruntime.errors import RuntimeFault
from airflow_ais_etl.aisruntime.launch import gunicorn_argv, num_workers, server_kind, uvicorn_options
from airflow_ais_etl.aisruntime.packages import split_list, unsatisfied
from airflow_ais_etl.aisruntime.payload import load_server_class
from airflow_ais_etl.etl.runtimes import (
    AIS_CLASS_RUNTIME_COMMAND,
    RUNTIME_SERVER_COMMAND,
    local_image_command,
)
from tests.ais_servers.initclass import reverse_class
from tests.unit.test_layers import _pkg, _violations

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize(
    ("image", "command"),
    [
        ("aistorage/runtime_python:3.11", [*AIS_CLASS_RUNTIME_COMMAND, "--image-python", "3.11"]),
        ("docker.io/aistorage/runtime_python:3.13", [*AIS_CLASS_RUNTIME_COMMAND, "--image-python", "3.13"]),
        ("localhost:5000/aistorage/runtime_python", AIS_CLASS_RUNTIME_COMMAND),
        ("aistorage/runtime_python@sha256:abc", AIS_CLASS_RUNTIME_COMMAND),
        ("aistorage/runtime_python:latest", AIS_CLASS_RUNTIME_COMMAND),
        ("airflow-ais-etl/runtime-python:3.11v2", RUNTIME_SERVER_COMMAND),
        ("aistorage/runtime_python_x:3.11", None),
        ("evil/aistorage/runtime_python-2:3.11", None),
        ("aistorage/transformer_md5:latest", None),
    ],
)
def test_one_map_from_images_to_local_programs(image: str, command: list[str] | None) -> None:
    assert local_image_command(image) == command


def test_aisruntime_imports_no_other_part_of_the_project() -> None:
    """It runs in a pod with only Python, aistore and this package: the model, Airflow, Kubernetes stay out."""
    assert _violations(_pkg("aisruntime"), may_import=(_pkg("aisruntime"),)) == []


@pytest.mark.parametrize(
    ("value", "cpus", "workers"),
    [(None, 8, 4), ("", 2, 2), (" 3 ", 8, 3), ("16", 2, 2), ("1", None, 1)],
)
def test_num_workers_defaults_to_four_capped_by_cpus(
    value: str | None, cpus: int | None, workers: int
) -> None:
    assert num_workers(value, cpus) == workers


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_num_workers_refuses_non_positive_integers(value: str) -> None:
    with pytest.raises(RuntimeFault, match="NUM_WORKERS must be a positive integer"):
        num_workers(value, 4)


def test_servers_listen_where_ais_image_does() -> None:
    options = uvicorn_options(3)
    assert (options["host"], options["port"], options["workers"], options["access_log"]) == (
        "0.0.0.0",
        8000,
        3,
        False,
    )
    argv = gunicorn_argv(2)
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8000"
    assert argv[argv.index("--workers") + 1] == "2"


def test_split_list_and_unsatisfied_requirements() -> None:
    assert split_list(" numpy, ,pillow>=9 ,") == ["numpy", "pillow>=9"]
    with pytest.raises(RuntimeFault, match="--index-url=http://x: entries must be package names"):
        split_list("numpy,--index-url=http://x")
    reqs = [
        "cloudpickle",
        "CloudPickle>=1",
        "cloudpickle<0.1",
        "airflow-ais-etl-no-such-dist",
        "./probe-1.0-py3-none-any.whl",
        'numpy; python_version < "3"',
    ]
    assert unsatisfied(reqs) == [
        "cloudpickle<0.1",
        "airflow-ais-etl-no-such-dist",
        "./probe-1.0-py3-none-any.whl",
    ]


def test_payload_round_trip_with_the_sdks_serializer() -> None:
    cls = load_server_class(serialize_class(reverse_class("http")), HERE)
    assert cls.__name__ == "Reverse"
    assert cls.transform(None, b"abc", "b/o", "") == b"cba"


def _b64(obj: Any) -> str:
    return base64.b64encode(cloudpickle.dumps(obj)).decode()


@pytest.mark.parametrize(
    ("payload", "image_python", "expected"),
    [
        ("", "", "ETL_CLASS_PAYLOAD is not set"),
        ("%%%", "", "ETL_CLASS_PAYLOAD is not base64"),
        (base64.b64encode(b"not a pickle").decode(), "", "cannot unpickle ETL_CLASS_PAYLOAD"),
        (
            base64.b64encode(b"not a pickle").decode(),
            "2.7",
            "asked for Python 2.7 (image tag) but this pod runs",
        ),
        (_b64(len), "", "not a subclass of AIS's ETLServer"),
        (_b64(dict), "", "not a subclass of AIS's ETLServer"),
    ],
    ids=["unset", "not-base64", "not-a-pickle", "other-python", "a-function", "another-class"],
)
def test_bad_payloads_say_what_is_wrong(payload: str, image_python: str, expected: str) -> None:
    with pytest.raises(RuntimeFault) as info:
        load_server_class(payload, image_python)
    assert expected in str(info.value)


def test_payload_needing_an_absent_module_names_it_and_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("aisruntime_gone_module")
    exec("class Thing:\n    pass\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    payload = base64.b64encode(pickle.dumps(module.Thing)).decode()
    monkeypatch.delitem(sys.modules, module.__name__)
    with pytest.raises(RuntimeFault) as info:
        load_server_class(payload)
    assert "needs module 'aisruntime_gone_module'" in str(info.value)
    assert "init_class(dependencies=[...])" in str(info.value)


@pytest.mark.parametrize(
    ("missing", "kind"),
    [("aistore.sdk.etl.webserver.base_etl_server", "http"), ("fastapi", "fastapi")],
    ids=["aistore", "etl-extra-only"],
)
def test_missing_aistore_or_its_etl_extra_names_our_extra(
    monkeypatch: pytest.MonkeyPatch, missing: str, kind: str
) -> None:
    payload = serialize_class(reverse_class(kind))
    for module in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, module)
    if kind == "fastapi":  # the server module imports fastapi: unpickling it must fail on that
        monkeypatch.delitem(sys.modules, "aistore.sdk.etl.webserver.fastapi_server")
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(RuntimeFault) as info:
        load_server_class(payload)
    assert "pip install 'airflow-ais-etl[ais]'" in str(info.value)
    assert missing.partition(".")[0] in str(info.value)


def test_server_kind_of_each_ais_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from aistore.sdk.etl.webserver.base_etl_server import ETLServer

    monkeypatch.setenv("AIS_TARGET_URL", "http://127.0.0.1:1")
    for kind in ("fastapi", "flask", "http"):
        assert server_kind(reverse_class(kind)()) == kind

    class Own(ETLServer):
        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            return data

        def start(self) -> None:
            raise AssertionError("never started")

    with pytest.raises(RuntimeFault, match="extends none of AIS's servers"):
        server_kind(Own())
