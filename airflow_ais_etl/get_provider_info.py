"""Provider metadata read by Airflow's providers manager (the single source of it)."""

from __future__ import annotations

from typing import Any

from airflow_ais_etl.hooks.settings import CONN_FIELDS, CONN_TYPE, UI_FIELD_BEHAVIOUR

INTEGRATION = "AIS ETL"


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow validates against its provider_info schema."""
    return {
        "package-name": "airflow-ais-etl",
        "name": "AIS ETL",
        "description": "AIStore-style ETL for Apache Airflow: transformation pods, offline and inline transforms.",
        # The same value as [project.urls] Documentation in pyproject.toml, which Airflow shows (it
        # overrides this key from the package metadata); without it the UI links to airflow.apache.org.
        "documentation-url": "docs/index.md",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://github.com/NVIDIA/aistore/blob/main/docs/etl.md",
                "tags": ["software"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_ais_etl.hooks.ais_etl"]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_ais_etl.operators.etl", "airflow_ais_etl.operators.transform"],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_ais_etl.sensors.etl"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_ais_etl.triggers.etl"]}],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_ais_etl.hooks.ais_etl.AisEtlHook",
                "hook-name": "AIS ETL",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": ["airflow_ais_etl.links.etl.AisEtlLink"],
    }
