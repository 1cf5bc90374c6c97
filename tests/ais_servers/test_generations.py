"""Both protocol generations with arg type fqn, and etl_args / direct put with the project's runtime.

A definition declares its generation (``protocol``, default 2025); a pod of the other one fails
the init probe instead of writing wrong bytes (docs/protocol.md). The project's runtime speaks both.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions, run_offline
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from airflow_ais_etl.etl.errors import AbortError, PodStartError, TransformError, ValidationError
from tests.ais_servers.conftest import make_bucket, pod_spec, variant

if TYPE_CHECKING:
    from airflow_ais_etl.service import AisEtl

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ais-generations")]

DEC2024 = Path(__file__).with_name("dec2024server.py")
WITH_ARGS = (
    "def transform(data, path, etl_args):\n"
    "    return data[::-1] + (('|' + etl_args + '|' + path).encode() if etl_args else b'')\n"
)
BYTES_ONLY = "def transform(data):\n    return data[::-1]\n"
SLOW = "import time\n\ndef transform(data, path, etl_args):\n    time.sleep(0.1)\n    return data[::-1]\n"


def dec2024_spec() -> str:
    spec = json.loads(pod_spec("dec2024"))
    spec["spec"]["containers"][0]["command"] = ["python", str(DEC2024)]
    return json.dumps(spec)


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("gen-src") / "src"
    return root, make_bucket(root, 9)


def assert_reversed(dst: Path, data: dict[str, bytes]) -> None:
    for name, payload in data.items():
        assert (dst / name).read_bytes() == payload[::-1], name


def test_december_2024_server_declared_2024_is_byte_exact(
    ais_api: AisEtl, src: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, data = src
    ais_api.init_spec("dec-etl", dec2024_spec(), comm_type="hpush", arg_type="fqn", protocol="2024")
    msg = ais_api.view("dec-etl")
    try:
        for comm in ("hpush://", "hpull://"):
            dst = tmp_path / comm[:-3]
            stats = run_offline(
                ais_api.backend, variant(msg, comm, "fqn"), str(root), str(dst), OfflineOptions()
            )
            assert stats["state"] == "done"
            assert stats["objects"] == len(data)
            assert_reversed(dst, data)
    finally:
        ais_api.stop("dec-etl")


def test_december_2024_server_fails_init_under_the_default_protocol(ais_api: AisEtl) -> None:
    with pytest.raises(PodStartError, match=r"protocol mismatch.*protocol '2024'"):
        ais_api.init_spec("dec-etl-default", dec2024_spec(), comm_type="hpush", arg_type="fqn")
    assert ais_api.backend.endpoints("dec-etl-default") == []


def test_ais_server_declared_2024_fails_init_instead_of_writing_wrong_bytes(ais_api: AisEtl) -> None:
    with pytest.raises(PodStartError, match=r"protocol mismatch.*etl_fqn"):
        ais_api.init_spec(
            "ais-http-2024", pod_spec("http"), comm_type="hpush", arg_type="fqn", protocol="2024"
        )
    assert ais_api.backend.endpoints("ais-http-2024") == []


@pytest.fixture(scope="module")
def runtime_fqn_etl(ais_api: AisEtl) -> str:
    """The project's runtime with arg type fqn (it reads query etl_fqn, else the path)."""
    ais_api.init_code("rt-fqn-etl", WITH_ARGS, comm_type="hpush", arg_type="fqn")
    return "rt-fqn-etl"


@pytest.fixture(scope="module")
def runtime_etl(ais_api: AisEtl) -> str:
    """The project's runtime with AIS's transform(data, path, etl_args), direct put allowed."""
    ais_api.init_code("rt-args-etl", WITH_ARGS, comm_type="hpush", direct_put=True)
    return "rt-args-etl"


@pytest.mark.parametrize("protocol", ["2025", "2024"])
@pytest.mark.parametrize("comm", ["hpush://", "hpull://"])
def test_project_runtime_speaks_both_generations(
    ais_api: AisEtl,
    runtime_fqn_etl: str,
    src: tuple[Path, dict[str, bytes]],
    tmp_path: Path,
    comm: str,
    protocol: str,
) -> None:
    root, data = src
    msg = dataclasses.replace(variant(ais_api.view(runtime_fqn_etl), comm, "fqn"), protocol=protocol)
    stats = run_offline(ais_api.backend, msg, str(root), str(tmp_path / "dst"), OfflineOptions())
    assert stats["objects"] == len(data)
    assert_reversed(tmp_path / "dst", data)


@pytest.mark.parametrize("comm", ["hpush://", "hpull://"])
def test_project_runtime_args_and_direct_put(
    ais_api: AisEtl, runtime_etl: str, src: tuple[Path, dict[str, bytes]], tmp_path: Path, comm: str
) -> None:
    root, data = src
    msg = variant(ais_api.view(runtime_etl), comm, "", direct_put=True)
    bucket = ais_api.backend.bucket_ref(str(root)).name
    dst = tmp_path / "dst"
    stats = run_offline(ais_api.backend, msg, str(root), str(dst), OfflineOptions(etl_args="a=1 b"))
    assert stats["direct_put_objects"] == len(data)
    assert stats["bytes_via_engine"] == 0
    for name, payload in data.items():
        path = f"{bucket}/{name}" if comm == "hpush://" else f"ais/@#/{bucket}/{name}"
        assert (dst / name).read_bytes() == payload[::-1] + f"|a=1 b|{path}".encode(), name
    inline = ais_api.transform_object(runtime_etl, str(root), "d1/o1.txt", etl_args="x")
    assert inline == data["d1/o1.txt"][::-1] + f"|x|{bucket}/d1/o1.txt".encode()


def test_args_to_a_transform_without_them_fail_clearly(
    ais_api: AisEtl, src: tuple[Path, dict[str, bytes]]
) -> None:
    root, _ = src
    ais_api.init_code("rt-plain-etl", BYTES_ONLY)
    try:
        with pytest.raises(TransformError, match=r"400.*define it as transform\(data, path, etl_args\)"):
            ais_api.transform_object("rt-plain-etl", str(root), "d1/o1.txt", etl_args="x")
    finally:
        ais_api.stop("rt-plain-etl")


def test_abort_during_direct_put_leaves_no_partial_object(ais_api: AisEtl, tmp_path: Path) -> None:
    root = tmp_path / "src"
    data = {f"o{i:03d}": bytes([i % 256]) * (1000 + 997 * i) for i in range(80)}
    root.mkdir()
    for name, payload in data.items():
        (root / name).write_bytes(payload)
    ais_api.init_code("rt-slow-etl", SLOW, direct_put=True)
    dst = tmp_path / "dst"
    control = JobControl()

    def abort_after_some() -> None:
        while len(list(dst.glob("o*"))) < 5:
            time.sleep(0.02)
        control.abort("test abort")

    threading.Thread(target=abort_after_some, daemon=True).start()
    try:
        with pytest.raises(AbortError) as info:
            run_offline(
                ais_api.backend,
                ais_api.view("rt-slow-etl"),
                str(root),
                str(dst),
                OfflineOptions(num_workers=4),
                control=control,
            )
        done_at_abort = sorted(p.name for p in dst.glob("o*"))
    finally:
        ais_api.stop("rt-slow-etl")  # the pods die mid-request: their gateway writes are cut
    stats = info.value.stats  # type: ignore[attr-defined]
    assert stats["bytes_via_engine"] == 0
    assert 5 <= len(done_at_abort) < len(data)
    deadline = time.monotonic() + 10
    while [p for p in dst.rglob("*") if p.name.startswith(TEMP_PREFIX)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in dst.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert sorted(p.name for p in dst.glob("o*")) == done_at_abort  # nothing delivered after the abort
    for name in done_at_abort:
        assert (dst / name).read_bytes() == data[name][::-1], name


def test_ws_is_for_spec_pods_only() -> None:
    from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
    from airflow_ais_etl.etl.validation import validate

    spec = validate(InitSpecMsg(name="ws-etl", comm_type="ws://", arg_type="fqn", spec=pod_spec("fastapi")))
    assert spec.comm_type == "ws://"
    with pytest.raises(ValidationError, match=r"ws://.*needs a pod spec"):
        validate(InitCodeMsg(name="ws-etl", comm_type="ws://", code=BYTES_ONLY, runtime="python3.11v2"))
    with pytest.raises(ValidationError, match="protocol must be one of"):
        validate(InitSpecMsg(name="ws-etl", protocol="2026", spec=pod_spec("fastapi")))


def test_cli_passes_args_to_object_and_bucket_transforms(
    ais_api: AisEtl,
    ais_home: Path,
    runtime_etl: str,
    src: tuple[Path, dict[str, bytes]],
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    from airflow_ais_etl.cli import main

    root, data = src
    bucket = ais_api.backend.bucket_ref(str(root)).name
    home = ["--home", str(ais_home)]
    assert (
        main([*home, "object", runtime_etl, "d1/o1.txt", "-", "--bucket", str(root), "--args", "cli arg"])
        == 0
    )
    assert capsysbinary.readouterr().out == data["d1/o1.txt"][::-1] + f"|cli arg|{bucket}/d1/o1.txt".encode()
    dst = tmp_path / "dst"
    assert main([*home, "--json", "bucket", runtime_etl, str(root), str(dst), "--args", "b=2"]) == 0
    for name, payload in data.items():
        assert (dst / name).read_bytes() == payload[::-1] + f"|b=2|{bucket}/{name}".encode(), name
