"""The provider's Airflow UI plugin: the ETL view (a FastAPI app on the api-server, shown in the UI)."""

from __future__ import annotations
