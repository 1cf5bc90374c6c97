"""The app uvicorn and gunicorn workers import: ``airflow_ais_etl.aisruntime.app:app``.

Each worker process unpickles the class from the env again (as AIS's image's ``server.py``
does); the bootstrap already proved that works before it started the server.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_ais_etl.aisruntime.payload import load_server_class

__all__ = ["app", "server"]

server: Any = load_server_class(os.environ.get("ETL_CLASS_PAYLOAD", ""))()
app: Any = server.app
