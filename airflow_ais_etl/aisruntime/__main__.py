"""Serve the ``init_class`` ETL of this pod's env: ``python -m airflow_ais_etl.aisruntime``."""

from __future__ import annotations

import sys

from airflow_ais_etl.aisruntime.bootstrap import main

if __name__ == "__main__":
    sys.exit(main())
