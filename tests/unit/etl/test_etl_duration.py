"""Go durations (§1.6) and the readiness polling interval (§3.4)."""

from __future__ import annotations

import math

import pytest

from airflow_ais_etl.etl.duration import format_duration, parse_duration, probing_interval
from airflow_ais_etl.etl.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("300ms", 0.3),
        ("2us", 2e-6),
        ("2\u00b5s", 2e-6),
        ("2\u03bcs", 2e-6),
        ("10ns", 1e-8),
        ("0", 0.0),
        ("-0", 0.0),
        ("+5s", 5.0),
        ("-1.5s", -1.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("1h2m3s4ms5us6ns", 3723.004005006),
        ("5m", 300.0),
        ("0s", 0.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize(("value", "seconds"), [(10, 10.0), (2.5, 2.5), (0, 0.0)])
def test_numbers_are_seconds(value: float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "bad", ["", "45", "1x", "s", "5 s", ".s", "-", "1e3s", "5sec", "h1", " 5s", "9999999999h", "1.2.3s"]
)
def test_parse_errors_hint_the_syntax(bad: str) -> None:
    with pytest.raises(ValidationError, match="use e.g. 45s, 5m, 1h30m"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [True, float("nan"), float("inf")])
def test_parse_rejects_non_durations(bad: float) -> None:
    with pytest.raises(ValidationError):
        parse_duration(bad)


def test_missing_unit_is_named() -> None:
    with pytest.raises(ValidationError, match="missing unit"):
        parse_duration("45")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45s"),
        (300, "5m"),
        (90, "1m30s"),
        (3600, "1h0m"),
        (5400, "1h30m"),
        (0, "0s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (60, "1m"),
        (3601, "1h0m1s"),
        (1.5e-6, "1.5\u00b5s"),
        (5e-9, "5ns"),
        (-90, "-1m30s"),
        (0.0015, "1.5ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [45, 300, 90, 3600, 5400, 0, 1.5, 0.5, 0.000123, 86400 * 3 + 7])
def test_format_parse_round_trip(seconds: float) -> None:
    assert math.isclose(parse_duration(format_duration(seconds)), seconds, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("timeout", "interval"),
    [(45, 1.0), (10, 1.0), (300, 4.6875), (600, 9.375), (1, 0.125), (0.5, 0.1)],
)
def test_probing_interval(timeout: float, interval: float) -> None:
    assert math.isclose(probing_interval(timeout), interval)
