"""Every offline option, end to end on the local backend."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import AisEtlError
from tests.offline.conftest import REVERSE, make_tree, objects, reverse, stamps, temp_files

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

FAIL_ON_BAD = "def transform(data):\n    if b'BAD' in data:\n        raise ValueError('bad object')\n    return data[::-1] + b'!'\n"
HANG_ON_SLOW = "import time\n\ndef transform(data):\n    if data.startswith(b'SLOW'):\n        time.sleep(30)\n    return data\n"
CONCURRENCY = """import os, time, uuid

BASE = {base!r}

def transform(data):
    d = os.path.join(BASE, os.environ["POD_IP"])
    os.makedirs(d, exist_ok=True)
    me = os.path.join(d, uuid.uuid4().hex)
    open(me, "w").close()
    now = len(os.listdir(d))
    with open(os.path.join(BASE, "max-" + os.environ["POD_IP"] + "-" + uuid.uuid4().hex), "w") as f:
        f.write(str(now))
    time.sleep(0.03)
    os.unlink(me)
    return data
"""


def simple_tree(root: Path, names: list[str], payload: bytes = b"data ") -> dict[str, bytes]:
    out = {}
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload * (i + 1))
        out[name] = payload * (i + 1)
    return out


@pytest.mark.integration
def test_selection_prefix_list_template_and_naming(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    data = simple_tree(src, [f"shard-{i:02d}.bin" for i in range(25)] + ["a/x.jpg", "a/y.jpg", "b/z.jpg"])
    api.init_code("select-etl", REVERSE)
    run = api.transform_bucket
    run("select-etl", str(src), str(tmp_path / "p"), OfflineOptions(prefix="a/"))
    assert objects(tmp_path / "p") == {n: reverse(data[n]) for n in ("a/x.jpg", "a/y.jpg")}
    run("select-etl", str(src), str(tmp_path / "l"), OfflineOptions(objects=("b/z.jpg", "shard-03.bin")))
    assert sorted(objects(tmp_path / "l")) == ["b/z.jpg", "shard-03.bin"]
    stats = run("select-etl", str(src), str(tmp_path / "t"), OfflineOptions(template="shard-{00..19}.bin"))
    assert sorted(objects(tmp_path / "t")) == [f"shard-{i:02d}.bin" for i in range(20)]
    assert stats["planned_objects"] == 20
    opts = OfflineOptions(prefix="a/", ext={"jpg": "txt"}, prepend="etl-")
    run("select-etl", str(src), str(tmp_path / "n"), opts)
    assert objects(tmp_path / "n") == {
        "etl-a/x.txt": reverse(data["a/x.jpg"]),
        "etl-a/y.txt": reverse(data["a/y.jpg"]),
    }
    api.stop("select-etl")


@pytest.mark.integration
def test_missing_name_in_an_explicit_list_is_an_error(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    simple_tree(src, ["a", "b"])
    api.init_code("list-etl", REVERSE)
    with pytest.raises(AisEtlError, match="nope") as err:
        api.transform_bucket(
            "list-etl", str(src), str(tmp_path / "d1"), OfflineOptions(objects=("a", "nope"))
        )
    assert "does not exist" in str(err.value)
    opts = OfflineOptions(objects=("a", "nope", "b"), continue_on_error=True)
    stats = api.transform_bucket("list-etl", str(src), str(tmp_path / "d2"), opts)
    assert [e["object"] for e in stats["errors"]] == ["nope"]
    assert sorted(objects(tmp_path / "d2")) == ["a", "b"]
    api.stop("list-etl")


@pytest.mark.integration
def test_dry_run_counts_without_calling_a_pod_or_writing(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree(src, ["BAD-1", "BAD-2", "c/BAD-3"], b"BAD ")
    api.init_code("dry-etl", FAIL_ON_BAD)
    stats = api.transform_bucket("dry-etl", str(src), str(dst), OfflineOptions(dry_run=True))
    assert (stats["objects"], stats["bytes_in"], stats["error_count"]) == (3, sum(map(len, data.values())), 0)
    assert stats["dry_run"] is True
    assert not dst.exists()
    logs = "".join(p.logs for p in api.logs("dry-etl"))
    assert "BAD" not in logs  # a transform call would have failed and logged the object
    api.stop("dry-etl")


@pytest.mark.integration
def test_continue_on_error_reports_every_failure(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    good = simple_tree(src, [f"good-{i:04d}" for i in range(1000)])  # more than in flight (2 x 192)
    simple_tree(src, ["bad-1", "bad-2", "z/bad-3"], b"BAD ")
    api.init_code("coer-etl", FAIL_ON_BAD)
    opts = OfflineOptions(continue_on_error=True, num_workers=2)
    stats = api.transform_bucket("coer-etl", str(src), str(tmp_path / "d1"), opts)
    assert sorted(e["object"] for e in stats["errors"]) == ["bad-1", "bad-2", "z/bad-3"]
    assert all("bad object" in e["error"] and "500" in e["error"] for e in stats["errors"])
    assert all(e["target"] in ("t1", "t2") for e in stats["errors"])
    assert objects(tmp_path / "d1") == {n: reverse(p) for n, p in good.items()}
    json.dumps(stats)
    with pytest.raises(AisEtlError, match="bad object") as err:
        api.transform_bucket("coer-etl", str(src), str(tmp_path / "d2"), OfflineOptions(num_workers=1))
    failed: dict[str, Any] = err.value.stats  # type: ignore[attr-defined]
    assert failed["state"] == "failed"
    assert failed["objects"] < len(good)  # the first error stopped the job (bad-* sort first)
    assert temp_files(tmp_path / "d2") == []
    api.stop("coer-etl")


@pytest.mark.integration
def test_request_timeout_names_the_object(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    simple_tree(src, ["fast-1", "fast-2"])
    (src / "slow one").write_bytes(b"SLOW")
    api.init_code("hang-etl", HANG_ON_SLOW)
    opts = OfflineOptions(request_timeout=0.5, continue_on_error=True)
    stats = api.transform_bucket("hang-etl", str(src), str(tmp_path / "dst"), opts)
    assert [e["object"] for e in stats["errors"]] == ["slow one"]
    assert "timed out after 0.5s" in stats["errors"][0]["error"]
    assert sorted(objects(tmp_path / "dst")) == ["fast-1", "fast-2"]
    api.stop("hang-etl")


@pytest.mark.integration
def test_num_workers_bounds_in_flight_requests_per_target(api: AisEtl, tmp_path: Path) -> None:
    src, probe = tmp_path / "src", tmp_path / "probe"
    probe.mkdir()
    simple_tree(src, [f"o{i:03d}" for i in range(120)])
    api.init_code("conc-etl", CONCURRENCY.format(base=str(probe)))
    api.transform_bucket("conc-etl", str(src), str(tmp_path / "dst"), OfflineOptions(num_workers=3))
    seen: dict[str, int] = {}
    for name in os.listdir(probe):
        if name.startswith("max-"):
            ip = name.split("-")[1]
            seen[ip] = max(seen.get(ip, 0), int((probe / name).read_text()))
    assert len(seen) == 2  # both targets worked
    assert max(seen.values()) <= 3
    assert max(seen.values()) >= 2  # and requests really ran in parallel
    api.stop("conc-etl")


@pytest.mark.integration
def test_skip_existing_redoes_nothing_but_a_changed_etl_redoes_all(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = make_tree(src, 50, big=1)
    api.init_code("resume-etl", REVERSE)
    api.transform_bucket("resume-etl", str(src), str(dst))
    first = stamps(dst, sorted(data))
    stats = api.transform_bucket("resume-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert (stats["skipped"], stats["objects"]) == (len(data), 0)
    assert stamps(dst, sorted(data)) == first
    (src / "obj-0003.dat").write_bytes(b"changed")  # a new source version is redone
    stats = api.transform_bucket("resume-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert (stats["skipped"], stats["objects"]) == (len(data) - 1, 1)
    assert (dst / "obj-0003.dat").read_bytes() == reverse(b"changed")
    gone = ["obj-0007.dat", "p1/obj-0010.dat"]  # noted results that are gone are redone
    for name in gone:
        (dst / name).unlink()
    stats = api.transform_bucket("resume-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert (stats["skipped"], stats["objects"]) == (len(data) - 2, 2)
    assert [(dst / name).read_bytes() for name in gone] == [reverse(data[name]) for name in gone]
    api.init_code("resume-etl", REVERSE.replace("b'!'", "b'?'"), replace=True)
    stats = api.transform_bucket("resume-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert (stats["skipped"], stats["objects"]) == (0, len(data))
    assert (dst / "obj-0001.dat").read_bytes().endswith(b"?")
    api.stop("resume-etl")


@pytest.mark.integration
def test_stats_are_json_safe_and_progress_is_reported(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    data = simple_tree(src, [f"o{i:03d}" for i in range(80)])
    api.init_code("stats-etl", "import time\n\ndef transform(d):\n    time.sleep(0.02)\n    return d\n")
    calls: list[dict[str, Any]] = []
    opts = OfflineOptions(num_workers=2, progress_interval=0.1)
    stats = api.transform_bucket("stats-etl", str(src), str(tmp_path / "dst"), opts, progress=calls.append)
    assert json.loads(json.dumps(stats)) == stats
    assert len(calls) >= 3
    assert calls[-1] == stats
    assert any(0 < c["objects"] < len(data) and c["eta"] is not None for c in calls[:-1])
    assert set(stats["targets"]) == {"t1", "t2"}
    assert sum(t["objects"] for t in stats["targets"].values()) == len(data)
    assert all(t["objects"] > 0 for t in stats["targets"].values())
    assert stats["rate_objects"] > 0
    assert stats["eta"] == 0.0
    assert stats["bytes_in"] == stats["bytes_out"] == sum(map(len, data.values()))
    api.stop("stats-etl")
