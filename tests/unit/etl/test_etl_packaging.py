"""Packaging: the wheel ships the pod template exactly once; the model imports no heavy clients."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from airflow_ais_etl.etl.podtemplate import load_template

ROOT = Path(__file__).resolve().parents[3]
MODULES = ["constants", "duration", "errors", "md", "msg", "naming", "podspec", "runtimes"]


def build_wheel(out: Path) -> Path:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        cmd = [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:  # e.g. no cached build backend and no index: let pip try
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = out.glob("airflow_ais_etl-*.whl")
    return wheel


@pytest.mark.integration
def test_wheel_contains_the_template_once(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert names.count("airflow_ais_etl/podspecs/runtime.yaml") == 1
        shipped = archive.read("airflow_ais_etl/podspecs/runtime.yaml").decode()
        assert "airflow_ais_etl/etl/podspec.py" in names
    assert shipped == (ROOT / "podspecs" / "runtime.yaml").read_text()
    assert shipped == load_template("runtime.yaml")
    assert yaml.safe_load(shipped)["kind"] == "Pod"


@pytest.mark.integration
def test_model_imports_neither_airflow_nor_kubernetes_nor_aiohttp() -> None:
    imports = "; ".join(f"import airflow_ais_etl.etl.{m}" for m in MODULES)
    probe = (
        f"import sys; {imports}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'kubernetes', 'aiohttp')); "
        "print(','.join(bad))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""
