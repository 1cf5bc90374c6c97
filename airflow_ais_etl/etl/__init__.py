"""Pure ETL model: definitions, messages, validation, metadata, pod specs and naming.

Nothing in this package does I/O beyond reading packaged templates and the source files a user
names (:mod:`~airflow_ais_etl.etl.sources`), and nothing imports Airflow, the Kubernetes client or
aiohttp, so every other layer can depend on it. :mod:`~airflow_ais_etl.etl.constants` imports
nothing at all: the pod runtime shares it.
"""

from __future__ import annotations
