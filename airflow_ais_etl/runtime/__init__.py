"""The transformer server that runs inside every init-code pod.

Run it as ``python -m airflow_ais_etl.runtime``. This subpackage imports only the standard library
and its own modules: the runtime image carries Python and this subpackage, nothing else.
"""

from __future__ import annotations
