"""The Airflow 3 imports this provider builds on, from one place (our own copy, as official providers keep).

When a feature needs a newer Airflow than the oldest supported one, add a flag here, computed from
``packaging.version.Version(airflow.__version__)`` (``AIRFLOW_V_3_x_PLUS``), and branch on it rather
than on scattered ``try/except ImportError``. No such branch exists yet, so no flag does either.
"""

from __future__ import annotations

from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, BaseSensorOperator, conf

__all__ = [
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "conf",
]
