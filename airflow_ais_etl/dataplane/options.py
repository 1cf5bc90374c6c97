"""The options of one offline job: what to transform and how, checked before anything runs.

Kept apart from the engine so that the CLI, the operators and the server can build and check them
without the engine's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.budget import DEFAULT_TARGET_BUDGET, check_budget
from airflow_ais_etl.dataplane.optiontypes import check_option_types
from airflow_ais_etl.dataplane.planning import check_shard
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.naming import validate_object_name, validate_prefix

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["OfflineOptions"]


@dataclass(frozen=True)
class OfflineOptions:
    """What to transform and how (every option is honoured)."""

    prefix: str = ""
    objects: tuple[str, ...] | None = None
    template: str | None = None
    ext: Mapping[str, str] | None = None
    prepend: str = ""
    dry_run: bool = False
    continue_on_error: bool = False
    request_timeout: float | None = None
    """Seconds one object may take, overriding the ETL's ``obj_timeout`` for this job."""
    num_workers: int = 8
    """In-flight requests per target."""
    skip_existing: bool = False
    """Resume: skip objects whose destination holds this ETL's result for the same source version."""
    progress_interval: float = 30.0
    etl_args: str = ""
    """Per-request arguments for every object's transform (query ``etl_args``, protocol 2025)."""
    bytes_in_flight: int = DEFAULT_TARGET_BUDGET
    """Source bytes in flight per target (an object larger than this runs alone): bounds pod memory."""
    shard: tuple[int, int] | None = None
    """``(index, count)``: transform only the objects whose name hash is ``index`` modulo ``count``."""

    def validate(self) -> None:
        """Raise :class:`ValidationError` for options that cannot work together or are out of range."""
        check_option_types(self)
        check_shard(self.shard)
        chosen = [n for n, v in (("objects", self.objects), ("template", self.template)) if v]
        if len(chosen) > 1:
            raise ValidationError("give either an explicit object list or a template, not both")
        if self.prefix and chosen:
            raise ValidationError(
                f"prefix cannot be combined with {chosen[0]}: put the prefix into it instead"
            )
        if self.num_workers < 1 or self.num_workers > 1024:
            raise ValidationError(f"num_workers must be between 1 and 1024, got {self.num_workers}")
        check_budget(self.bytes_in_flight)
        if self.request_timeout is not None and self.request_timeout <= 0:
            raise ValidationError(f"request_timeout must be positive seconds, got {self.request_timeout}")
        if self.progress_interval <= 0:
            raise ValidationError(f"progress_interval must be positive seconds, got {self.progress_interval}")
        if self.prefix:
            validate_prefix(self.prefix)
        for name in self.objects or ():
            validate_object_name(name)
        for key, value in (self.ext or {}).items():
            if not key or not value:
                raise ValidationError(f"extension map entries must be non-empty, got {key!r}: {value!r}")
