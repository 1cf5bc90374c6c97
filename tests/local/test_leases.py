"""Leases on the local backend: stops and definition changes respect the jobs of other holders.

Holders are made the way the operators make them (``acting_as`` an Airflow task's origin), in
threads of this process or, for a crashed holder, in a child process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cli import main
from airflow_ais_etl.cluster.leases import acting_as, this_holder
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import AbortError, EtlExistsError
from airflow_ais_etl.etl.leases import EtlInUseError
from airflow_ais_etl.etl.origin import Origin
from tests.local.conftest import UPPER

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

LOWER = "def transform(data):\n    return data.lower()\n"
SLOW = "import time\n\ndef transform(data):\n    time.sleep(0.05)\n    return data.upper()\n"
DAG = "lease_dag"


def run_of(run_id: str, task_id: str) -> Origin:
    return Origin(dag_id=DAG, task_id=task_id, run_id=run_id, try_number="1", map_index="-1")


class HeldLease:
    """A lease held by another run's task in a thread until ``release``."""

    def __init__(self, api: AisEtl, name: str, origin: Origin) -> None:
        self._release = threading.Event()
        held = threading.Event()

        def hold() -> None:
            with acting_as(origin), api.lease(name):
                held.set()
                self._release.wait(60)

        self.thread = threading.Thread(target=hold, daemon=True)
        self.thread.start()
        assert held.wait(10)

    def release(self) -> None:
        self._release.set()
        self.thread.join(10)


@pytest.fixture
def held(api: AisEtl) -> Iterator[list[HeldLease]]:
    leases: list[HeldLease] = []
    yield leases
    for lease in leases:
        lease.release()


def test_a_stop_leaves_an_etl_that_another_run_holds_and_force_stops_it(
    api: AisEtl, held: list[HeldLease]
) -> None:
    api.init_code("lease-etl", UPPER)
    held.append(HeldLease(api, "lease-etl", run_of("run-b", "transform_bucket")))
    with acting_as(run_of("run-a", "stop_etl")), pytest.raises(EtlInUseError) as exc:
        api.stop("lease-etl")
    assert exc.value.holders == [f"offline transform by task transform_bucket of run run-b (dag {DAG})"]
    assert api.info("lease-etl").state == "running"
    with acting_as(run_of("run-b", "stop_etl")):  # the holder's own run is never blocked by it
        assert api.stop("lease-etl") is True


def test_cli_stop_leaves_a_held_etl_unless_forced(
    api: AisEtl, held: list[HeldLease], capsys: pytest.CaptureFixture[str]
) -> None:
    """Unlike ``ais etl stop``, ``ais-etl stop`` leaves an ETL that a running job holds (exit 1)."""
    api.init_code("lease-etl", UPPER)
    held.append(HeldLease(api, "lease-etl", run_of("run-b", "transform_bucket")))
    assert main(["stop", "lease-etl"]) == 1
    err = capsys.readouterr().err
    assert "transform_bucket of run run-b" in err
    assert "--force" in err
    assert main(["stop", "--all"]) == 1
    assert api.info("lease-etl").state == "running"
    assert main(["stop", "--force", "lease-etl"]) == 0
    assert "ETL lease-etl stopped" in capsys.readouterr().out
    assert api.info("lease-etl").state == "stopped"


def test_a_forced_stop_aborts_the_job_naming_who_stopped_it(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(60):
        (src / f"o{i:02d}").write_bytes(b"x" * 10)
    api.init_code("lease-etl", SLOW)
    result: list[BaseException | dict[str, object]] = []

    def job() -> None:
        with acting_as(run_of("run-b", "transform_bucket")):
            try:
                result.append(
                    api.transform_bucket("lease-etl", str(src), str(dst), OfflineOptions(num_workers=1))
                )
            except BaseException as exc:
                result.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    while not api.leases("lease-etl") or not any(dst.glob("o*")):
        time.sleep(0.02)
    with acting_as(run_of("run-a", "stop_etl")):
        with pytest.raises(EtlInUseError):
            api.stop("lease-etl")
        assert api.stop("lease-etl", force=True) is True
    thread.join(30)
    (err,) = result
    assert isinstance(err, AbortError), err
    assert err.cause == f"etl lease-etl stopped by task stop_etl of run run-a (dag {DAG})"
    assert api.leases("lease-etl") == []  # the aborted job dropped its lease


def test_the_lease_of_a_killed_holder_does_not_block_a_stop(api: AisEtl, home: Path) -> None:
    api.init_code("lease-etl", UPPER)
    code = (
        "import sys, time\n"
        "from airflow_ais_etl.service import AisEtl\n"
        "api = AisEtl.local(sys.argv[1])\n"
        "with api.lease('lease-etl'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        (lease,) = api.leases("lease-etl")
        assert lease.holder.pid == child.pid
        assert lease.describe().startswith("offline transform by user ")
        with pytest.raises(EtlInUseError, match=f"pid {child.pid}"):
            api.stop("lease-etl")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert api.leases("lease-etl") == []
    assert api.stop("lease-etl") is True


def test_an_init_with_another_definition_replaces_a_free_etl_and_waits_for_or_names_a_holder(
    api: AisEtl, held: list[HeldLease]
) -> None:
    api.init_code("lease-etl", UPPER)
    with acting_as(run_of("run-a", "init_etl")):
        with pytest.raises(EtlExistsError):  # the API's default, as AIS: never replace a running ETL
            api.init_code("lease-etl", LOWER)
        held.append(HeldLease(api, "lease-etl", run_of("run-b", "transform_bucket")))
        with pytest.raises(EtlInUseError, match="transform_bucket of run run-b") as exc:
            api.init_code("lease-etl", LOWER, on_definition_change="replace_if_free")
        assert "not replaced" in str(exc.value)
        with pytest.raises(EtlInUseError, match="not replaced within the wait"):
            api.init_code(
                "lease-etl", LOWER, on_definition_change="wait_then_replace", definition_change_timeout=0.5
            )
        assert api.view("lease-etl").code == UPPER  # type: ignore[union-attr]
        assert api.info("lease-etl").state == "running"
        threading.Timer(1.0, held[0].release).start()
        info = api.init_code("lease-etl", LOWER, on_definition_change="wait_then_replace")
        assert info.state == "running"
        assert api.view("lease-etl").code == LOWER  # type: ignore[union-attr]
        held.append(HeldLease(api, "lease-etl", run_of("run-c", "transform_bucket")))
        api.init_code("lease-etl", UPPER, on_definition_change="replace")  # now, whoever holds it
        assert api.view("lease-etl").code == UPPER  # type: ignore[union-attr]
        held[1].release()
        api.init_code("lease-etl", LOWER, on_definition_change="replace_if_free")  # free: replaced
        assert api.view("lease-etl").code == LOWER  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="on_definition_change must be one of"):
            api.init_code("lease-etl", UPPER, on_definition_change="sometimes")
    assert api.stop("lease-etl") is True
    assert this_holder().describe().startswith("user ")


def test_a_held_lease_is_renewed_and_an_expired_one_from_another_machine_stops_counting(
    api: AisEtl,
) -> None:
    from airflow_ais_etl.cluster.leases import hold_lease
    from airflow_ais_etl.etl.leases import Holder, Lease, put_lease

    with hold_lease(api.backend, "lease-etl", "offline transform", ttl=2.0, renew=0.05) as lease:
        assert lease is not None
        deadline = time.monotonic() + 30
        while api.leases("lease-etl")[0].expires <= lease.expires and time.monotonic() < deadline:
            time.sleep(0.05)
        (renewed,) = api.leases("lease-etl")
        assert renewed.id == lease.id
        assert renewed.expires > lease.expires
    assert api.leases("lease-etl") == []

    api.init_code("lease-etl", UPPER)
    remote = Holder("bob", "another-host", 1, "1", DAG, "run-r", "transform_bucket", "-1", "1")
    now = time.time()
    api.backend.update_leases(
        lambda doc: put_lease(doc, "lease-etl", Lease("r", remote, "offline transform", now, now + 60))
    )
    with pytest.raises(
        EtlInUseError, match="run run-r"
    ):  # its pid means nothing here: it counts until it expires
        api.stop("lease-etl")
    api.backend.update_leases(
        lambda doc: put_lease(doc, "lease-etl", Lease("r", remote, "offline transform", now, now - 1))
    )
    assert api.leases("lease-etl") == []
    assert api.stop("lease-etl") is True


def test_a_ui_login_or_a_task_is_who_acts_within_the_block_and_the_process_after() -> None:
    from airflow_ais_etl.cluster.leases import acting_as_user

    before = this_holder()
    assert before.describe() == f"user {before.user}@{before.host} (pid {os.getpid()})"
    with acting_as_user("admin"):
        assert this_holder().describe() == f"user admin@{before.host} (pid {os.getpid()})"
        with acting_as(run_of("run-a", "stop_etl")):
            assert this_holder().describe() == f"task stop_etl of run run-a (dag {DAG})"
    assert this_holder() == before
