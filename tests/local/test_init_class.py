"""``init_class`` ETLs on the local backend: AIS's ``runtime_python`` image as our aisruntime program.

The ETLSpecMsg is the one the AIStore SDK's own ``Etl.init_class`` builds (``serialize_class`` of a
real ``ETLServer`` subclass); it goes through the spec-init path, and its pods run AIS's own server
code from ``aistore[etl]``. Results are byte-exact; a failing transform is a per-object error; a bad
payload fails the init with the runtime's message and leaves no process behind.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import stat
from typing import TYPE_CHECKING, Any

import cloudpickle
import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from airflow_ais_etl.dataplane.engine import OfflineOptions, run_offline
from airflow_ais_etl.etl.errors import PodStartError
from airflow_ais_etl.service import AisEtl
from tests.ais_servers.conftest import make_bucket, variant
from tests.ais_servers.initclass import init_class_message, probe_class, probe_wheel, reverse_class
from tests.ais_servers.test_ais_servers import Case, check_result
from tests.local.conftest import processes_under

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration
TWO_PODS = pytest.mark.xdist_group("init-class")
ONE_POD = pytest.mark.xdist_group("init-class-small")
"""Each group's module fixtures (its cluster, its pods) start once, on one xdist worker; the groups run in parallel."""

ARGS = "k=v &x/ü"


def _home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A local cluster home for the module; nothing started under it may outlive it."""
    home = tmp_path_factory.mktemp(name) / "home"
    yield home
    LocalBackend(home).shutdown()
    leftovers = [p for p in processes_under(home) if p.is_running()]
    for p in leftovers:
        p.kill()
    assert not leftovers, f"processes left behind: {[p.cmdline() for p in leftovers]}"


@pytest.fixture(scope="module")
def class_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from _home(tmp_path_factory, "init-class")


@pytest.fixture(scope="module")
def class_api(class_home: Path) -> AisEtl:
    """Two targets: two pods that both bind 0.0.0.0:8000, each as its own address."""
    return AisEtl(LocalBackend(class_home, default_targets=2))


@pytest.fixture(scope="module")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from _home(tmp_path_factory, "init-class-small")


@pytest.fixture(scope="module")
def small_api(small_home: Path) -> AisEtl:
    """One target, for the cases that need one pod only (each pod start costs a Python start-up)."""
    return AisEtl(LocalBackend(small_home, default_targets=1))


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("init-class-src") / "src"
    return root, make_bucket(root, 8)


def _init(api: AisEtl, name: str, kind: str, **kwargs: Any) -> dict[str, Any]:
    message = init_class_message(name, reverse_class(kind), **kwargs)
    api.init_spec(name, json.dumps(message))
    return message


@pytest.fixture(scope="module")
def fastapi_etl(class_api: AisEtl) -> Iterator[str]:
    """The SDK's default init_class ETL (hpush, direct put) on FastAPI, two uvicorn workers per pod."""
    _init(class_api, "cls-fastapi", "fastapi", NUM_WORKERS="2")
    yield "cls-fastapi"
    class_api.stop("cls-fastapi")


@TWO_PODS
def test_sdk_message_runs_ais_runtime_image(class_api: AisEtl, fastapi_etl: str) -> None:
    msg = class_api.view(fastapi_etl)
    assert (msg.comm_type, msg.direct_put) == ("hpush://", True)
    info = class_api.info(fastapi_etl)
    assert (info.state.value, info.pods) == ("running", 2)
    logs = "".join(p.logs for p in class_api.logs(fastapi_etl))
    assert "serving Reverse with uvicorn, 2 worker(s)" in logs


@TWO_PODS
def test_inline_with_args_byte_exact(
    class_api: AisEtl, fastapi_etl: str, src: tuple[Path, dict[str, bytes]]
) -> None:
    root, data = src
    bucket = class_api.backend.bucket_ref(str(root)).name
    for name in ("d1/o1.txt", "d0/obj 0%41.bin", "big/blob.bin"):
        got = class_api.transform_object(fastapi_etl, str(root), name, etl_args=ARGS)
        assert isinstance(got, bytes)
        check_result(got, Case("hpush://", etl_args=ARGS), name, data[name], bucket)
        assert class_api.transform_object(fastapi_etl, str(root), name) == data[name][::-1]


@TWO_PODS
@pytest.mark.parametrize(
    "case",
    [
        Case("hpush://", direct_put=True),
        Case("hpull://", etl_args=ARGS),
        Case("hpull://", "fqn", direct_put=True),
    ],
    ids=str,
)
def test_offline_byte_exact(
    class_api: AisEtl, fastapi_etl: str, src: tuple[Path, dict[str, bytes]], tmp_path: Path, case: Case
) -> None:
    """The pod serves each comm type the engine speaks, as an ETL initialised with it would send it."""
    root, data = src
    dst = tmp_path / "dst"
    msg = variant(class_api.view(fastapi_etl), case.comm_type, case.arg_type, direct_put=case.direct_put)
    stats = run_offline(
        class_api.backend, msg, str(root), str(dst), OfflineOptions(num_workers=4, etl_args=case.etl_args)
    )
    assert stats["state"] == "done", stats["errors"]
    assert stats["objects"] == len(data)
    bucket = class_api.backend.bucket_ref(str(root)).name
    for name, payload in data.items():
        check_result((dst / name).read_bytes(), case, name, payload, bucket)
    assert stats["direct_put_objects"] == (len(data) if case.direct_put else 0)


@TWO_PODS
def test_failing_transform_is_a_per_object_error(class_api: AisEtl, fastapi_etl: str, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "good.txt").write_bytes(b"fine")
    (root / "bad.txt").write_bytes(b"FAIL here")
    dst = tmp_path / "dst"
    stats = class_api.transform_bucket(
        fastapi_etl, str(root), str(dst), OfflineOptions(continue_on_error=True, num_workers=2)
    )
    assert (dst / "good.txt").read_bytes() == b"enif"
    assert not (dst / "bad.txt").exists()
    errors = json.dumps(stats["errors"])
    for part in ("bad.txt", "Processing error", "refusing", "starts with FAIL"):
        assert part in errors, errors


@ONE_POD
@pytest.mark.parametrize(("kind", "workers"), [("flask", "1"), ("http", "1")])
def test_flask_and_http_servers(
    small_api: AisEtl, src: tuple[Path, dict[str, bytes]], kind: str, workers: str
) -> None:
    """Flask classes run under gunicorn (exec'd in the runtime's place); HTTP ones in-process."""
    root, data = src
    name = f"cls-{kind}"
    _init(small_api, name, kind, comm_type="hpull", NUM_WORKERS=workers)
    try:
        for obj in ("d1/o1.txt", "big/blob.bin"):
            assert small_api.transform_object(name, str(root), obj) == data[obj][::-1]
    finally:
        small_api.stop(name)


def _with_env(message: dict[str, Any], **env: str) -> dict[str, Any]:
    runtime = dict(message["runtime"])
    runtime["env"] = [e for e in runtime["env"] if e["name"] not in env] + [
        {"name": k, "value": v} for k, v in env.items()
    ]
    return {**message, "runtime": runtime}


@ONE_POD
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ETL_CLASS_PAYLOAD": "not base64 at all!"}, "ETL_CLASS_PAYLOAD is not base64"),
        (
            {"ETL_CLASS_PAYLOAD": base64.b64encode(cloudpickle.dumps(len)).decode()},
            "not a subclass of AIS's ETLServer",
        ),
        ({"OS_PACKAGES": "airflow-ais-etl-no-such-package"}, "OS_PACKAGES airflow-ais-etl-no-such-package"),
    ],
    ids=["not-base64", "not-a-server", "os-package"],
)
def test_bad_payload_fails_init_clearly(
    small_api: AisEtl, small_home: Path, env: dict[str, str], expected: str
) -> None:
    name = "cls-bad"
    message = _with_env(init_class_message(name, reverse_class("http")), **env)
    with pytest.raises(PodStartError) as info:
        small_api.init_spec(name, json.dumps(message))
    assert "last log lines:\nERROR: " in str(info.value)
    assert expected in str(info.value)
    assert name not in [e.name for e in small_api.list() if e.state.value == "running"]
    assert not [p for p in processes_under(small_home / "etls" / name) if p.is_running()]


@ONE_POD
def test_packages_go_to_a_private_directory_of_the_pod(
    small_api: AisEtl, small_home: Path, src: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    """What the environment has is used as is; the rest is installed for this pod only, never shared."""
    root, data = src
    wheel = probe_wheel(tmp_path)
    name = "cls-packages"
    message = init_class_message(name, probe_class(), dependencies=["cloudpickle>=1", str(wheel)])
    small_api.init_spec(name, json.dumps(message))
    try:
        assert small_api.transform_object(name, str(root), "d1/o1.txt") == b"<" + data["d1/o1.txt"] + b">"
        logs = "".join(p.logs for p in small_api.logs(name))
        assert f"installing {wheel} into" in logs
        assert "installing cloudpickle" not in logs
        assert importlib.util.find_spec("aisclass_probe") is None  # not in the shared environment
        dirs = list((small_home / "etls" / name).glob("*/aisruntime-packages"))
        assert len(dirs) == 1
        assert all(stat.S_IMODE(d.stat().st_mode) == 0o700 and (d / "aisclass_probe").is_dir() for d in dirs)
    finally:
        small_api.stop(name)
