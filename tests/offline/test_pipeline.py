"""Pipelines: one pass through a chain of ETLs, offline and inline, with abort and resume guarantees."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions, job_fingerprint
from airflow_ais_etl.etl.errors import AbortError, EtlNotFoundError, TransformError, ValidationError
from airflow_ais_etl.etl.pipeline import MAX_STAGES, parse_pipeline
from tests.offline.conftest import (
    REVERSE,
    SLOW,
    count_files,
    make_tree,
    objects,
    reverse,
    simple_tree_upper,
    stamps,
    temp_files,
    tree_hashes,
    when,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

UPPER = "def transform(data):\n    return data.upper()\n"
FAILS_ON_X = (
    "def transform(data):\n"
    "    if b'X' in data:\n"
    "        raise ValueError('no X please')\n"
    "    return data[::-1] + b'!'\n"
)


def upper_then_reverse(data: bytes) -> bytes:
    return reverse(data.upper())


@pytest.mark.integration
def test_offline_pipeline_is_byte_exact_and_writes_only_the_last_result(api: AisEtl, tmp_path: Path) -> None:
    """Stage 1 pulls the source (hpull), stage 2 gets its bytes pushed; big objects included."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = make_tree(src, 12, big=1)
    before = tree_hashes(src)
    api.init_code("upper-etl", UPPER, comm_type="hpull://")
    api.init_code("rev-etl", REVERSE)
    stats = api.transform_bucket("upper-etl>>rev-etl", str(src), str(dst), OfflineOptions(num_workers=2))
    assert stats["state"] == "done"
    assert stats["etl"] == "upper-etl>>rev-etl"
    assert objects(dst) == {n: upper_then_reverse(p) for n, p in data.items()}
    assert tree_hashes(src) == before  # the source is untouched
    assert temp_files(dst) == []
    # the other order is another chain: a different result, and its own journal (nothing reused)
    dst2 = tmp_path / "dst2"
    api.transform_bucket(["rev-etl", "upper-etl"], str(src), str(dst2), OfflineOptions(num_workers=2))
    assert objects(dst2) == {n: reverse(p).upper() for n, p in data.items()}


@pytest.mark.integration
def test_inline_pipeline_to_bytes_and_to_a_bucket(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    data = make_tree(src, 3, big=1)
    api.init_code("upper-etl", UPPER)
    api.init_code("rev-etl", REVERSE, comm_type="hpull://")
    for name, payload in data.items():
        got = api.transform_object("upper-etl,rev-etl", str(src), name)
        assert got == upper_then_reverse(payload), name
    summary = api.transform_object(
        ("upper-etl", "rev-etl"), str(src), "obj-0001.dat", dst=str(tmp_path / "out")
    )
    assert isinstance(summary, dict)
    assert objects(tmp_path / "out") == {"obj-0001.dat": upper_then_reverse(data["obj-0001.dat"])}


@pytest.mark.integration
def test_stop_of_the_second_etl_aborts_and_the_same_chain_resumes(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 200)
    before = tree_hashes(src)
    api.init_code("rev-etl", REVERSE)
    api.init_code("slow-etl", SLOW)
    chain = "rev-etl>>slow-etl"
    when(count_files(dst, 10), lambda: api.stop("slow-etl"))
    with pytest.raises(AbortError) as err:
        api.transform_bucket(chain, str(src), str(dst), OfflineOptions(num_workers=2))
    assert "etl slow-etl stopped" in str(err.value)
    assert api.info("rev-etl").state == "running"  # only the stopped ETL is down
    assert err.value.stats["objects"] < len(data)  # type: ignore[attr-defined]
    assert tree_hashes(src) == before
    assert temp_files(dst) == []
    partial = objects(dst)
    for name, payload in partial.items():  # no partial, no intermediate object
        assert payload == reverse(data[name]).upper(), name
    kept = stamps(dst, sorted(partial))

    api.start("slow-etl")
    stats = api.transform_bucket(chain, str(src), str(dst), OfflineOptions(skip_existing=True, num_workers=4))
    assert stats["state"] == "done"
    assert stats["skipped"] > 0
    assert objects(dst) == {n: reverse(p).upper() for n, p in data.items()}
    assert stamps(dst, sorted(partial)) == kept  # finished objects were not redone
    # a different chain never reuses this chain's journal
    assert job_fingerprint([api.view("rev-etl"), api.view("slow-etl")]) != job_fingerprint(
        api.view("rev-etl")
    )
    other = api.transform_bucket("slow-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert other["skipped"] == 0


@pytest.mark.integration
def test_a_killed_pod_of_the_second_etl_aborts_naming_that_pod(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 200)
    api.init_code("rev-etl", REVERSE)
    api.init_code("slow-etl", SLOW)

    def kill() -> None:
        pod = api.backend._pods("slow-etl")["t1"]  # type: ignore[attr-defined]
        os.kill(pod.containers[0].pid(), signal.SIGKILL)

    when(count_files(dst, 10), kill)
    with pytest.raises(AbortError) as err:
        api.transform_bucket("rev-etl>>slow-etl", str(src), str(dst), OfflineOptions(num_workers=2))
    assert "pod of t1 exited with code -9" in str(err.value)  # the event, not a refused connection
    assert "rev-etl>>slow-etl" in str(err.value)
    assert api.info("rev-etl").state == "running"
    for name, payload in objects(dst).items():
        assert payload == reverse(data[name]).upper(), name
    assert temp_files(dst) == []


@pytest.mark.integration
def test_continue_on_error_names_the_failing_stage(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a fine object")
    (src / "b.txt").write_bytes(b"has an x")
    api.init_code("upper-etl", UPPER)
    api.init_code("picky-etl", FAILS_ON_X)
    opts = OfflineOptions(continue_on_error=True)
    stats = api.transform_bucket("upper-etl>>picky-etl", str(src), str(dst), opts)
    assert objects(dst) == {"a.txt": b"A FINE OBJECT"[::-1] + b"!"}
    [error] = stats["errors"]
    assert error["object"] == "b.txt"
    assert error["stage"] == "picky-etl"
    assert "stage 2 (picky-etl) of pipeline upper-etl>>picky-etl" in error["error"]
    with pytest.raises(TransformError, match="stage 2 \\(picky-etl\\)"):
        api.transform_bucket("upper-etl>>picky-etl", str(src), str(tmp_path / "d2"), OfflineOptions())


@pytest.mark.integration
def test_invalid_chains_are_refused_before_any_write(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    simple_tree_upper(src, 3)
    api.init_code("upper-etl", UPPER)
    api.init_code("fqn-etl", REVERSE, arg_type="fqn")
    api.init_code("idle-etl", UPPER)
    api.stop("idle-etl")
    cases = [
        ("", "empty ETL pipeline"),
        ("upper-etl>>", "empty ETL name at position 2"),
        ("upper-etl>>upper-etl", "appears twice"),
        ([f"etl-{i:03d}" for i in range(MAX_STAGES + 1)], f"at most {MAX_STAGES}"),
        ("upper-etl>>fqn-etl", "stage 2 (fqn-etl) of pipeline upper-etl>>fqn-etl has arg type 'fqn'"),
    ]
    for chain, message in cases:
        with pytest.raises(ValidationError) as err:
            api.transform_bucket(chain, str(src), str(dst))
        assert message in str(err.value), chain
    with pytest.raises(EtlNotFoundError, match="idle-etl"):
        api.transform_bucket("upper-etl>>idle-etl", str(src), str(dst))
    with pytest.raises(EtlNotFoundError, match="no-such-etl"):
        api.transform_bucket("upper-etl>>no-such-etl", str(src), str(dst))
    with pytest.raises(EtlNotFoundError, match="idle-etl"):
        api.transform_object("upper-etl>>idle-etl", str(src), "o-0000.dat")
    assert objects(dst) == {}


def test_parse_pipeline_spellings() -> None:
    assert parse_pipeline("etl-one") == ("etl-one",)
    assert parse_pipeline("etl-one>>etl-two") == ("etl-one", "etl-two")
    assert parse_pipeline(" etl-one , etl-two ") == ("etl-one", "etl-two")
    assert parse_pipeline(["etl-one", "etl-two"]) == ("etl-one", "etl-two")
    with pytest.raises(ValidationError, match="list of names"):
        parse_pipeline(3)  # type: ignore[arg-type]
