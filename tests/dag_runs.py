"""Helpers for tests that run the example DAGs with ``dag.test()`` (local and Kubernetes backends)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DAG

EXAMPLE_DAGS = Path(__file__).resolve().parent.parent / "example_dags"


def example_dag(name: str, module_prefix: str = "ais_etl_example") -> DAG:
    """Import ``example_dags/<name>.py`` under a unique module name and return its ``dag``."""
    spec = importlib.util.spec_from_file_location(f"{module_prefix}_{name}", EXAMPLE_DAGS / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag: DAG = module.dag
    return dag


def task_states(dr: Any) -> dict[tuple[str, int], str]:
    """Return ``{(task_id, map_index): state}`` of a finished DAG run."""
    return {
        (ti.task_id, ti.map_index): str(getattr(ti.state, "value", ti.state))
        for ti in dr.get_task_instances()
    }


def visible_objects(bucket: Path) -> dict[str, Path]:
    """Return the visible objects of a local bucket (the engine's journal lives under a dot dir)."""
    return {
        str(p.relative_to(bucket)): p
        for p in sorted(bucket.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(bucket).parts)
    }
