"""The one error of the class runtime: why the pod cannot serve, said so the user can fix it."""

from __future__ import annotations

__all__ = ["AIS_EXTRA_HINT", "RuntimeFault"]

AIS_EXTRA_HINT = (
    "init_class ETLs run AIStore's own ETL servers, which need the `ais` extra in the environment "
    "the pods run in: pip install 'airflow-ais-etl[ais]' (it installs aistore[etl]==2.0.0)"
)


class RuntimeFault(Exception):
    """The pod cannot serve its ETL; the message says what is wrong and how to fix it."""
