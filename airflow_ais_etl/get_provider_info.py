"""Provider metadata read by Airflow's providers manager (the single source of it)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow validates against its provider_info schema."""
    return {
        "package-name": "airflow-ais-etl",
        "name": "AIS ETL",
        "description": "AIStore-style ETL for Apache Airflow: transformation pods, offline and inline transforms.",
        "versions": ["0.1.0"],
    }
