"""Pure ETL model: messages, validation, metadata, pod specs and naming.

Nothing in this package does I/O beyond reading packaged templates, and nothing imports Airflow,
the Kubernetes client or aiohttp, so every other layer (and the pod runtime) can depend on it.
"""

from __future__ import annotations
