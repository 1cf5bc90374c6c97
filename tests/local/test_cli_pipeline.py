"""``ais-etl bucket A>>B`` and ``ais-etl object A>>B``: AIS's pipeline spelling on the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cli import main

if TYPE_CHECKING:
    from pathlib import Path

UPPER = "def transform(data):\n    return data.upper()\n"
REVERSE = "def transform(data):\n    return data[::-1]\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_cli_pipeline_bucket_and_object(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, code in (("upper-etl", UPPER), ("rev-etl", REVERSE)):
        path = tmp_path / f"{name}.py"
        path.write_text(code)
        assert run(capsys, "init", "code", "--name", name, "--from-file", str(path))[0] == 0
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    data = {f"o{i}.txt": f"object number {i}".encode() for i in range(6)}
    for name, payload in data.items():
        (src / name).write_bytes(payload)

    rc, out, err = run(capsys, "--json", "bucket", "upper-etl>>rev-etl", str(src), str(dst), "--wait")
    assert rc == 0, err
    stats = json.loads(out)
    assert (stats["etl"], stats["objects"], stats["state"]) == ("upper-etl>>rev-etl", 6, "done")
    assert {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()} == {
        n: p.upper()[::-1] for n, p in data.items()
    }

    out_file = tmp_path / "one.txt"
    assert run(capsys, "object", "rev-etl,upper-etl", str(src / "o1.txt"), str(out_file))[0] == 0
    assert out_file.read_bytes() == b"OBJECT NUMBER 1"[::-1]

    rc, _out, err = run(capsys, "bucket", "upper-etl>>", str(src), str(tmp_path / "bad"))
    assert rc == 1
    assert "empty ETL name at position 2" in err
    rc, _out, err = run(capsys, "object", "upper-etl>>upper-etl", str(src / "o1.txt"), "-")
    assert rc == 1
    assert "appears twice" in err
    assert not (tmp_path / "bad").exists()
