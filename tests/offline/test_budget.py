"""Bytes in flight per target, end to end: pods never hold more than the budget, big objects still pass."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import ValidationError
from tests.offline.conftest import objects, temp_files

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

MiB = 1 << 20
# Each call notes its size in a file while it runs; it then writes down what its pod holds at once.
IN_FLIGHT = """import os, time, uuid

BASE = {base!r}

def transform(data):
    d = os.path.join(BASE, os.environ["POD_IP"])
    os.makedirs(d, exist_ok=True)
    me = os.path.join(d, uuid.uuid4().hex)
    with open(me, "w") as f:
        f.write(str(len(data)))
    held = []
    for name in os.listdir(d):
        try:
            with open(os.path.join(d, name)) as f:
                held.append(int(f.read() or 0))
        except (FileNotFoundError, ValueError):
            pass
    with open(os.path.join(BASE, "seen-" + uuid.uuid4().hex), "w") as f:
        f.write(f"{{sum(held)}} {{len(held)}}")
    time.sleep(0.1)
    os.unlink(me)
    return data[::-1]
"""


@pytest.mark.integration
def test_pods_hold_at_most_the_budget_and_a_bigger_object_runs_alone(api: AisEtl, tmp_path: Path) -> None:
    src, dst, probe = tmp_path / "src", tmp_path / "dst", tmp_path / "probe"
    src.mkdir()
    probe.mkdir()
    data = {f"o-{i:02d}.bin": bytes([i]) * (3 * MiB // 2 + i) for i in range(10)}
    data["huge.bin"] = os.urandom(5 * MiB)  # larger than the budget: must pass, alone
    for name, payload in data.items():
        (src / name).write_bytes(payload)
    api.init_code("budget-etl", IN_FLIGHT.format(base=str(probe)))
    budget = 3 * MiB + 64
    stats = api.transform_bucket(
        "budget-etl", str(src), str(dst), OfflineOptions(num_workers=8, bytes_in_flight=budget)
    )
    assert stats["objects"] == len(data)
    assert objects(dst) == {n: p[::-1] for n, p in data.items()}
    assert temp_files(dst) == []
    seen = [
        tuple(map(int, (probe / n).read_text().split())) for n in os.listdir(probe) if n.startswith("seen-")
    ]
    assert len(seen) == len(data)
    assert all(held <= budget or count == 1 for held, count in seen), seen
    assert max(count for _held, count in seen) == 2  # two 1.5 MiB objects did run side by side
    api.stop("budget-etl")


def test_a_bad_budget_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValidationError, match="bytes_in_flight must be a positive integer"):
        OfflineOptions(bytes_in_flight=0).validate()
