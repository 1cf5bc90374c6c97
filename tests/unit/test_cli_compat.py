"""``ais etl`` spellings: sizes and durations with units, AIS's argument forms, ``0.0.0.0`` per pod."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cli import build_parser, main
from airflow_ais_etl.cli_compat import parse_seconds, parse_size
from airflow_ais_etl.cluster.local.podnet import own_address

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("65536", 65536),
        ("32KiB", 32768),
        ("1MiB", 1 << 20),
        ("128k", 128_000),
        ("4mb", 4_000_000),
        ("1.5KiB", 1536),
    ],
)
def test_sizes_take_iec_and_si_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"), [("45s", 45.0), ("5m", 300.0), ("1h30m", 5400.0), ("30", 30.0), ("2.5", 2.5)]
)
def test_durations_take_units_or_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["32 parsecs", "-1", "soon"])
def test_bad_sizes_and_durations_are_usage_errors(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(bad) if "parsec" in bad else parse_seconds(bad)


def test_ais_spellings_parse_to_the_same_options() -> None:
    p = build_parser()
    a = p.parse_args(["init", "-f", "spec.yaml", "--init-timeout", "5m", "--object-timeout", "30s"])
    assert (a.init_cmd, a.from_file, a.wait_timeout, a.obj_timeout, a.comm_type) == (
        None,
        "spec.yaml",
        300.0,
        30.0,
        None,
    )
    b = p.parse_args(["init", "spec", "--from-file", "pod.yaml", "--timeout", "2m", "--name", "my-etl"])
    assert (b.init_cmd, b.from_file, b.wait_timeout, b.name) == ("spec", "pod.yaml", 120.0, "my-etl")
    c = p.parse_args(["init", "code", "--name", "x-etl", "--from-file", "f.py", "--chunk-size", "32KiB"])
    assert c.chunk_size == 32768
    d = p.parse_args(
        ["bucket", "e", "ais://a", "ais://b", "--cont-on-err", "--etl-timeout", "30s", "--timeout", "1m"]
    )
    assert (d.continue_on_error, d.requests_timeout, d.timeout) == (True, 30.0, 60.0)
    assert p.parse_args(["stop", "a", "b", "c"]).names == ["a", "b", "c"]
    assert p.parse_args(["init", "spec", "--from-file", "s.yaml", "md5-etl"]).etl_name == "md5-etl"
    assert p.parse_args(["view-logs", "e", "t1"]).target == "t1"
    assert p.parse_args(["object", "e", "ais://b/o", "-", "--args", "k=v"]).etl_args == "k=v"


def test_zero_address_becomes_the_pods_own() -> None:
    ip = "127.4.5.6"
    assert own_address("0.0.0.0", ip) == ip
    assert own_address("0.0.0.0:8000", ip) == f"{ip}:8000"
    assert own_address("--host=0.0.0.0", ip) == f"--host={ip}"
    assert own_address("10.0.0.0.1 and 100.0.0.0", ip) == "10.0.0.0.1 and 100.0.0.0"


def test_override_flags_are_refused_with_a_multi_etl_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "multi.yaml"
    one = "name: {}\nruntime:\n  image: aistorage/transformer_echo:latest\n"
    spec.write_text(one.format("echo-one") + "---\n" + one.format("echo-two"))
    rc = main(
        ["--home", str(tmp_path / "home"), "init", "-f", str(spec), "--name", "x-etl", "--init-timeout", "1m"]
    )
    assert rc == 1
    assert (
        "cannot use override flags ['--name', '--init-timeout'] with a multi-ETL file"
        in capsys.readouterr().err
    )
    spec.write_text("name: echo-one\nimage: aistorage/transformer_echo:latest\n")
    assert main(["--home", str(tmp_path / "home"), "init", "-f", str(spec)]) == 1
    assert "unknown document (missing 'runtime' or 'spec'" in capsys.readouterr().err
