"""Bounded waits: a hanging transform fails its object after ``obj_timeout``; Ctrl-C and SIGTERM end
a CLI job at once (130/143) with nothing partial and a journal a re-run resumes from."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import TransformError
from tests.offline.conftest import count_files, objects, simple_tree_upper, temp_files, when
from tests.offline.test_faults import journaled

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

HANGS = (
    "import time\n\n"
    "def transform(data):\n"
    "    if data.startswith(b'hang'):\n"
    "        time.sleep(3600)\n"
    "    time.sleep(0.02)\n"
    "    return data.upper()\n"
)
QUICK_STOP = {"AIS_ETL_GRACE_SECONDS": "1"}
"""The runtime's grace for in-flight requests when stopped: the hanging ones need not be waited for."""


@pytest.mark.integration
def test_a_hanging_transform_fails_its_object_after_obj_timeout(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 6)
    (src / "hang-1.dat").write_bytes(b"hang forever")
    api.init_code("hang-etl", HANGS, obj_timeout="1s", env=QUICK_STOP)
    assert api.view("hang-etl").obj_timeout == 1.0
    stats = api.transform_bucket(
        "hang-etl", str(src), str(dst), OfflineOptions(continue_on_error=True, num_workers=2)
    )
    assert [e["object"] for e in stats["errors"]] == ["hang-1.dat"]
    assert "timed out after 1.0s" in stats["errors"][0]["error"]
    assert objects(dst) == {n: p.upper() for n, p in data.items()}
    # without continue_on_error the job ends with that error; the job's own timeout overrides
    with pytest.raises(TransformError, match=r"timed out after 0\.5s"):
        api.transform_bucket(
            "hang-etl", str(src), str(tmp_path / "dst2"), OfflineOptions(request_timeout=0.5, num_workers=1)
        )
    assert temp_files(tmp_path / "dst2") == []
    with pytest.raises(TransformError, match="timed out"):
        api.transform_object("hang-etl", str(src), "hang-1.dat", timeout=0.5)


@pytest.mark.integration
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_cli_job_at_once_and_a_rerun_resumes(
    api: AisEtl, home: Path, tmp_path: Path, sig: int, code: int
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 200)
    (src / "hang-0.dat").write_bytes(b"hang until interrupted")  # one object never finishes
    api.init_code("sig-etl", HANGS, env=QUICK_STOP)
    cli = [sys.executable, "-m", "airflow_ais_etl.cli", "--home", str(home), "bucket", "sig-etl"]
    proc = subprocess.Popen(
        [*cli, str(src), str(dst), "--num-workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    when(count_files(dst, 20), lambda: proc.send_signal(sig)).join()
    _, err = proc.communicate(timeout=60)  # a guard against a hang, not a speed check
    assert proc.returncode == code, err
    assert f"interrupted by {signal.Signals(sig).name}" in err
    assert temp_files(dst) == []
    done = objects(dst)
    assert all(payload == data[name].upper() for name, payload in done.items())
    noted = journaled(api, dst, "sig-etl")
    assert noted == set(done)  # the journal was flushed before the exit: nothing finished is redone
    (src / "hang-0.dat").unlink()
    rerun = subprocess.run(
        [sys.executable, "-m", "airflow_ais_etl.cli", "--home", str(home), "--json", "bucket", "sig-etl"]
        + [str(src), str(dst), "--skip-existing"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert '"skipped": ' + str(len(done)) in rerun.stdout
    assert objects(dst) == {n: p.upper() for n, p in data.items()}
