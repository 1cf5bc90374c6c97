"""The operator extra link to an ETL (its dashboard, or its state directory on the local backend)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_ais_etl.version_compat import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["AisEtlLink"]

log = logging.getLogger(__name__)


class AisEtlLink(BaseOperatorLink):
    """Link a task to the ETL it worked on.

    The operator calls :meth:`persist` as soon as it knows the ETL name, so the link shows while the
    task still runs; :meth:`get_link` only reads that XCom back and never raises.
    """

    name = "AIS ETL"
    key: ClassVar[str] = "ais_etl_link"

    @property
    def xcom_key(self) -> str:
        return self.key

    @classmethod
    def persist(cls, context: Context | dict[str, Any], url: str) -> None:
        """Store ``url`` in the running task's XCom under the link's key."""
        context["ti"].xcom_push(key=cls.key, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the stored URL, or ``""`` when there is none or it cannot be read."""
        from airflow.sdk.execution_time.xcom import XCom

        try:
            value = XCom.get_value(key=self.xcom_key, ti_key=ti_key)
        except Exception:
            log.debug("cannot read the %s link of %s", self.name, ti_key, exc_info=True)
            return ""
        return value if isinstance(value, str) else ""
