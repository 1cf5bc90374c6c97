"""Airflow version flags and the Airflow 3 imports this provider builds on (our own copy).

Branch on the flags, not on scattered ``try/except ImportError``.
"""

from __future__ import annotations

from airflow import __version__ as _airflow_version
from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, BaseSensorOperator, conf
from packaging.version import Version

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "conf",
    "get_base_airflow_version_tuple",
]


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """Return the running Airflow's ``(major, minor, micro)``, ignoring pre/dev/post tags."""
    version = Version(_airflow_version)
    return version.major, version.minor, version.micro


AIRFLOW_V_3_1_PLUS = get_base_airflow_version_tuple() >= (3, 1, 0)
AIRFLOW_V_3_3_PLUS = get_base_airflow_version_tuple() >= (3, 3, 0)
