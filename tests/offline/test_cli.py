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


@pytest.mark.integration
def test_cli_shards_split_a_bucket_and_each_resumes_on_its_own(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 40)
    code = tmp_path / "upper.py"
    code.write_text("def transform(data):\n    return data.upper()\n")
    assert run(capsys, "init", "code", "--name", "shard-etl", "--from-file", str(code))[0] == 0
    done: list[int] = []
    for i in range(3):
        rc, out, err = run(
            capsys,
            "--json",
            "bucket",
            "shard-etl",
            str(src),
            str(dst),
            "--shard",
            f"{i}/3",
            "--bytes-in-flight",
            "1MiB",
        )
        assert rc == 0, err
        done.append(json.loads(out)["objects"])
    assert sum(done) == 40
    assert all(n > 0 for n in done)  # CRC-32 splits 40 names over all three shards
    assert objects(dst) == {n: p.upper() for n, p in data.items()}
    rc, out, err = run(
        capsys, "--json", "bucket", "shard-etl", str(src), str(dst), "--shard", "1/3", "--skip-existing"
    )
    assert rc == 0, err
    assert json.loads(out)["skipped"] == done[1]
    assert json.loads(out)["objects"] == 0
    assert run(capsys, "stop", "shard-etl")[0] == 0


@pytest.mark.parametrize(
    ("flags", "says"),
    [(["--shard", "two"], "use INDEX/COUNT"), (["--bytes-in-flight", "lots"], "invalid size 'lots'")],
)
def test_cli_refuses_unparsable_shard_and_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bucket", "any-etl", str(tmp_path / "src"), str(tmp_path / "dst"), *flags])
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--shard", "3/3"], "shard index must be between 0 and 2 for 3 shard(s), got 3"),
        (["--shard", "0/0"], "shard count must be at least 1"),
        (["--bytes-in-flight", "0"], "bytes_in_flight must be a positive integer"),
    ],
)
def test_cli_refuses_out_of_range_shard_and_budget_before_anything_runs(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    src = tmp_path / "src"
    simple_tree_upper(src, 2)
    rc, _, err = run(capsys, "bucket", "no-such-etl", str(src), str(tmp_path / "dst"), *flags)
    assert rc == 1
    assert says in err
    assert not (tmp_path / "dst").exists()
