"""Fixtures for end-to-end tests of the embedded local backend (real processes, real HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psutil
import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from airflow_ais_etl.service import AisEtl

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

UPPER = "def transform(data):\n    return data.upper()\n"


def processes_under(home: Path) -> list[psutil.Process]:
    """Return the live processes whose command line mentions ``home`` or that run inside it."""
    out = []
    needle = str(home)
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(needle in part for part in proc.info["cmdline"] or []) or proc.cwd().startswith(needle):
                out.append(proc)
        except (psutil.Error, OSError):
            continue
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh local cluster home; everything started under it is stopped and checked at the end."""
    h = tmp_path / "home"
    monkeypatch.setenv("AIS_ETL_HOME", str(h))
    yield h
    LocalBackend(h).shutdown()
    leftovers = [p for p in processes_under(h) if p.is_running()]
    for p in leftovers:
        p.kill()
    assert not leftovers, f"processes left behind: {[p.cmdline() for p in leftovers]}"


@pytest.fixture
def api(home: Path) -> AisEtl:
    return AisEtl.local(str(home))
