"""Start the transformer server: ``python -m airflow_ais_etl.runtime``."""

from __future__ import annotations

import sys

from airflow_ais_etl.runtime.supervisor import main

if __name__ == "__main__":
    sys.exit(main())
