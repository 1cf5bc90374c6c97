"""``ais-etl bucket ... --wait`` with every flag, progress on stderr."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cli import main
from tests.offline.conftest import SLOW, objects, simple_tree_upper

if TYPE_CHECKING:
    from pathlib import Path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_cli_bucket_with_every_flag(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 30)
    (src / "img.jpg").write_bytes(b"jpeg")
    code = tmp_path / "slow.py"
    code.write_text(SLOW)
    assert run(capsys, "init", "code", "--name", "cli-etl", "--from-file", str(code))[0] == 0
    rc, out, err = run(capsys, "bucket", "cli-etl", str(src), str(dst), "--prefix", "o-", "--dry-run")
    assert rc == 0
    assert "would transform 30 object(s)" in out
    assert not dst.exists()
    rc, out, err = run(
        capsys,
        "bucket",
        "cli-etl",
        str(src),
        str(dst),
        "--prefix",
        "o-",
        "--wait",
        "--num-workers",
        "2",
        "--requests-timeout",
        "30",
        "--continue-on-error",
    )
    assert rc == 0, err
    assert "transformed 30 object(s)" in out
    assert "objects (" in err
    assert "ETA" in err
    assert objects(dst) == {n: p.upper() for n, p in data.items()}
    rc, out, err = run(
        capsys,
        "--json",
        "bucket",
        "cli-etl",
        str(src),
        str(dst),
        "--prefix",
        "o-",
        "--skip-existing",
        "--wait",
    )
    assert rc == 0
    assert json.loads(out)["skipped"] == 30
    rc, out, err = run(
        capsys,
        "bucket",
        "cli-etl",
        str(src),
        str(tmp_path / "d2"),
        "--list",
        "img.jpg,o-0001.dat",
        "--ext",
        "{jpg:txt}",
        "--prepend",
        "etl-",
        "--wait",
    )
    assert rc == 0, err
    assert sorted(objects(tmp_path / "d2")) == ["etl-img.txt", "etl-o-0001.dat"]
    rc, out, err = run(
        capsys, "bucket", "cli-etl", str(src), str(tmp_path / "d3"), "--template", "o-{0000..0004}.dat"
    )
    assert rc == 0
    assert sorted(objects(tmp_path / "d3")) == [f"o-{i:04d}.dat" for i in range(5)]
    rc, out, err = run(capsys, "bucket", "cli-etl", str(src), str(tmp_path / "d4"), "--list", "missing.bin")
    assert rc == 1
    assert "missing.bin" in err
    assert run(capsys, "stop", "cli-etl")[0] == 0
