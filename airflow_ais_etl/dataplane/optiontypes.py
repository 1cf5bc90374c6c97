"""Type checks of offline job options built in Python code (the CLI and operators coerce first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_ais_etl.etl.coerce import as_float, as_str, as_str_list, as_str_map, describe
from airflow_ais_etl.etl.errors import ValidationError

if TYPE_CHECKING:
    from airflow_ais_etl.dataplane.engine import OfflineOptions

__all__ = ["check_option_types"]


def check_option_types(options: OfflineOptions) -> None:
    """Refuse values of the wrong Python type with the model's errors (not a bare TypeError)."""
    for name in ("prefix", "prepend"):
        as_str(name, getattr(options, name))
    for name in ("dry_run", "continue_on_error", "skip_existing"):
        value = getattr(options, name)
        if not isinstance(value, bool):
            raise ValidationError(f"{name} must be a bool (True or False), got {describe(value)}")
    if options.objects is not None:
        as_str_list("objects", options.objects)
    if options.template is not None:
        as_str("template", options.template)
    if options.ext is not None:
        as_str_map("ext", options.ext)
    if isinstance(options.num_workers, bool) or not isinstance(options.num_workers, int):
        raise ValidationError(f"num_workers must be an integer, got {describe(options.num_workers)}")
    if options.request_timeout is not None:
        as_float("request_timeout", options.request_timeout, positive=False)
    as_float("progress_interval", options.progress_interval, positive=False)
