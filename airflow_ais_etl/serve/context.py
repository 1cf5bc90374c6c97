"""What every route works on: the ETL service, the served buckets and the job registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_ais_etl.serve.jobs import JobRegistry

if TYPE_CHECKING:
    from airflow_ais_etl.serve.buckets import BucketRoot
    from airflow_ais_etl.service import AisEtl

__all__ = ["ServeContext"]


@dataclass
class ServeContext:
    """The server's state: one service (the same as the CLI's), one bucket root, the running jobs."""

    api: AisEtl
    buckets: BucketRoot
    jobs: JobRegistry = field(default_factory=JobRegistry)
