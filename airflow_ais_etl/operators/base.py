"""What every AIS ETL operator shares: the hook, the link, and turning unfixable errors into no-retry."""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_ais_etl.etl.errors import EtlExistsError
from airflow_ais_etl.etl.origin import Origin
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.links.etl import AisEtlLink
from airflow_ais_etl.version_compat import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import Context

__all__ = ["AisEtlBaseOperator", "fail_without_retry", "task_origin"]


@contextlib.contextmanager
def fail_without_retry() -> Iterator[None]:
    """Turn errors no retry can fix (bad arguments, invalid definitions) into ``AirflowFailException``.

    ``ValidationError`` is a ``ValueError``; a conflicting definition (``EtlExistsError``) needs a
    change of the DAG too.
    """
    try:
        yield
    except (ValueError, TypeError, EtlExistsError) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _known(obj: object, attr: str) -> str | int | None:
    value = getattr(obj, attr, None)
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def task_origin(context: Context) -> Origin:
    """Return the task instance of ``context`` as the origin of the objects it creates.

    Labels and annotations from it let ``kubectl get pods -l airflow-ais-etl/dag-id=<dag>`` find
    what a DAG started; a field the context lacks is left out.
    """
    ti = context.get("ti")
    run_id = context.get("run_id")
    return Origin.from_mapping(
        {
            "dag_id": _known(context.get("dag"), "dag_id") or _known(ti, "dag_id"),
            "task_id": _known(ti, "task_id"),
            "run_id": run_id if isinstance(run_id, str) else _known(ti, "run_id"),
            "try_number": _known(ti, "try_number"),
            "map_index": _known(ti, "map_index"),
        }
    )


class AisEtlBaseOperator(BaseOperator):
    """Base of the AIS ETL operators: connection id, hook, and the ETL link.

    :param ais_etl_conn_id: the ``ais_etl`` connection (templated)
    """

    operator_extra_links: tuple[AisEtlLink, ...] = (AisEtlLink(),)

    def __init__(self, *, ais_etl_conn_id: str = AisEtlHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ais_etl_conn_id = ais_etl_conn_id

    @cached_property
    def hook(self) -> AisEtlHook:
        """Return the hook of the operator's connection; the ETL service is ``hook.api``."""
        return AisEtlHook(self.ais_etl_conn_id)

    def acting(self, context: Context) -> contextlib.AbstractContextManager[object]:
        """Within the block, this task holds the leases taken and is named as who stops an ETL."""
        from airflow_ais_etl.cluster.leases import acting_as

        return acting_as(task_origin(context))

    def persist_link(self, context: Context, etl_name: str) -> None:
        """Record the ETL this task works on (the link and the ETL view read it); a failure only warns."""
        try:
            dashboard = self.hook.etl_url(etl_name)
        except ValueError as exc:
            self.log.warning("cannot build the ETL dashboard link: %s", exc)
            dashboard = ""
        AisEtlLink.persist(context, etl_name, str(self.ais_etl_conn_id), dashboard)
