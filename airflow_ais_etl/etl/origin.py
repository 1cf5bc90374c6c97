"""Where an ETL's pods come from: the Airflow task that started them, as labels and annotations.

``kubectl get pods -l airflow-ais-etl/dag-id=<dag>`` then finds the pods a DAG started, and the
annotations keep the exact values that labels may only hold sanitised. The origin is metadata of the
objects, never part of the ETL definition: a re-init of the same definition from another task or run
stays a no-op. Pure (no Airflow, no Kubernetes): the operators read the task context, the backends
put the result on their objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_ais_etl.etl.podspec import label_value

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ORIGIN_KEY_PREFIX", "Origin", "origin_key"]

ORIGIN_KEY_PREFIX = "airflow-ais-etl/"
"""Prefix of the origin label and annotation keys (as the io-command annotation's)."""

_FIELDS = ("dag_id", "task_id", "run_id", "try_number", "map_index")


def origin_key(field: str) -> str:
    """Return the label/annotation key of an origin field, e.g. ``airflow-ais-etl/dag-id``."""
    return ORIGIN_KEY_PREFIX + field.replace("_", "-")


@dataclass(frozen=True)
class Origin:
    """The Airflow task instance that creates an ETL's objects.

    :param dag_id: the DAG id
    :param task_id: the task id
    :param run_id: the DAG run id
    :param try_number: the task instance's try
    :param map_index: the mapped task's index; ``-1`` (or None) when the task is not mapped
    """

    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    try_number: str | None = None
    map_index: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Origin:
        """Build an origin from ``{dag_id, task_id, run_id, try_number, map_index}``; other keys are ignored."""
        return cls(*(_text(values.get(key)) for key in _FIELDS))

    def _items(self) -> list[tuple[str, str]]:
        return [(field, value) for field in _FIELDS if (value := getattr(self, field)) is not None]

    def annotations(self) -> dict[str, str]:
        """Return every known field verbatim (annotations take any text), keyed by :func:`origin_key`."""
        return {origin_key(field): value for field, value in self._items()}

    def labels(self) -> dict[str, str]:
        """Return every known field as a valid label value, keyed by :func:`origin_key`.

        Values that are not label values (too long, odd characters) keep a sanitised prefix plus a
        hash of the original, so distinct values stay distinct. An unmapped task (``map_index`` -1)
        gets no map-index label: ``-1`` is no label value, and selecting on it is meaningless.
        """
        return {
            origin_key(field): label_value(value)
            for field, value in self._items()
            if not (field == "map_index" and _unmapped(value))
        }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _unmapped(map_index: str) -> bool:
    try:
        return int(map_index) < 0
    except ValueError:
        return False
