"""The ``ais-etl`` command line, driven end to end on the local backend."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cli import main
from tests.local.conftest import UPPER

if TYPE_CHECKING:
    from pathlib import Path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_cli_lifecycle(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code_file = tmp_path / "upper.py"
    code_file.write_text(UPPER)
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "a b.txt").write_bytes(b"hello cli")
    assert (
        run(
            capsys, "init", "code", "--name", "cli-etl", "--from-file", str(code_file), "--comm-type", "hpull"
        )[0]
        == 0
    )
    rc, out, _ = run(capsys, "--json", "show")
    assert rc == 0
    assert [(e["name"], e["state"], e["comm_type"]) for e in json.loads(out)] == [
        ("cli-etl", "running", "hpull://")
    ]
    rc, out, _ = run(capsys, "show")
    assert "cli-etl" in out
    assert "running" in out
    assert "ETL NAME" in out
    rc, out, _ = run(capsys, "view", "cli-etl")
    assert rc == 0
    assert "def transform" in out
    assert "hpull://" in out
    rc, out, _ = run(capsys, "--json", "health", "cli-etl")
    assert rc == 0
    assert [h["status"] for h in json.loads(out)] == ["Running", "Running"]
    rc, out, _ = run(capsys, "--json", "metrics", "cli-etl")
    assert rc == 0
    assert len(json.loads(out)) == 2
    rc, out, _ = run(capsys, "logs", "cli-etl", "t1")
    assert rc == 0
    assert "=== t1" in out
    assert "=== t2" not in out
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_ais_etl.cli",
            "object",
            "cli-etl",
            "dir/a b.txt",
            "-",
            "--bucket",
            str(src),
        ],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"HELLO CLI"
    dst = tmp_path / "out.txt"
    assert run(capsys, "object", "cli-etl", str(src / "dir" / "a b.txt"), str(dst))[0] == 0
    assert dst.read_bytes() == b"HELLO CLI"
    rc, out, _ = run(capsys, "--json", "cluster", "show")
    assert [t["id"] for t in json.loads(out)["targets"]] == ["t1", "t2"]
    assert run(capsys, "stop", "--all")[0] == 0
    rc, out, _ = run(capsys, "stop", "cli-etl")
    assert rc == 0
    assert "was not running" in out
    assert run(capsys, "start", "cli-etl")[0] == 0
    assert run(capsys, "rm", "cli-etl")[0] == 0  # as AIS's `ais etl rm`: a running ETL is stopped first
    assert json.loads(run(capsys, "--json", "show")[1]) == []


def test_cli_errors_go_to_stderr_with_non_zero_exit(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("def transform(data):\n    return data\n"))
    rc, out, err = run(capsys, "view", "missing-etl")
    assert rc == 1
    assert out == ""
    assert "missing-etl does not exist" in err
    rc, out, err = run(capsys, "--json", "init", "code", "--name", "x", "--from-file", "/nonexistent/file.py")
    assert rc == 1
    assert out == ""
    assert json.loads(err)["type"] == "ValidationError"
    rc, _out, err = run(
        capsys, "init", "code", "--name", "cli-etl", "--from-file", "-", "--comm-type", "pigeon"
    )
    assert rc == 1
    assert 'unknown comm-type "pigeon://"' in err
    rc, _out, err = run(capsys, "stop")
    assert rc == 1
    assert "--all" in err
    rc, _out, err = run(
        capsys,
        "init",
        "code",
        "--name",
        "cli-etl",
        "--from-file",
        "-",
        "--env",
        "A=1",
        "--env",
        "AIS_ETL_UNSET_B",
    )
    assert rc == 1  # NAME alone takes this shell's $NAME: unset here
    assert "--env AIS_ETL_UNSET_B: $AIS_ETL_UNSET_B is not set in this shell" in err
    rc, _out, err = run(capsys, "init", "code", "--name", "cli-etl", "--from-file", "-", "--env", "=1")
    assert rc == 1
    assert "invalid --env '=1'" in err
    with pytest.raises(SystemExit):
        main(["init", "code"])  # argparse usage error: required flags


@pytest.mark.integration
def test_cli_cluster_targets(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "cluster", "add-target")[0] == 0
    rc, out, _ = run(capsys, "--json", "cluster", "show")
    data = json.loads(out)
    assert [t["id"] for t in data["targets"]] == ["t1", "t2", "t3"]
    assert data["version"] == 2
    assert run(capsys, "cluster", "remove-target", "t2")[0] == 0
    rc, out, _ = run(capsys, "--json", "cluster", "show")
    assert [t["id"] for t in json.loads(out)["targets"]] == ["t1", "t3"]
    rc, _out, err = run(capsys, "cluster", "remove-target", "t9")
    assert rc == 1
    assert "unknown target 't9'" in err
