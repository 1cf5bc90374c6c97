"""Pipelines: one transform through a chain of ETLs, first to last, in one pass.

Pure: turns what a user wrote (``"etl-1>>etl-2"`` as AIS's CLI spells it, ``"etl-1,etl-2"`` as
AIS's API packs it, or a list of names) into the checked tuple of ETL names every interface uses.
ETL names are ``[a-z0-9-]``, so neither separator can be part of a name.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.validation import validate_name

__all__ = ["MAX_STAGES", "SEPARATORS", "parse_pipeline", "pipeline_label"]

MAX_STAGES = 16
"""Most ETLs in one pipeline: every stage holds each in-flight object's intermediate result once."""
SEPARATORS = (">>", ",")


def parse_pipeline(value: str | Sequence[str]) -> tuple[str, ...]:
    """Return the ETL names of ``value`` (one name, ``a>>b``, ``a,b`` or a list/tuple of names).

    :raises ValidationError: an empty chain or stage, a name used twice, too many stages, or a bad name
    """
    if isinstance(value, str):
        text = value.replace(">>", ",")
        names = [part.strip() for part in text.split(",")] if text.strip() else []
    elif isinstance(value, Sequence) and all(isinstance(n, str) for n in value):
        names = [n.strip() for n in value]
    else:
        raise ValidationError(
            f"ETL name must be a string (a pipeline: 'etl-1>>etl-2' or a list of names), "
            f"got {type(value).__name__}"
        )
    if not names:
        raise ValidationError("empty ETL pipeline: name at least one ETL (e.g. 'etl-1>>etl-2')")
    for i, name in enumerate(names, 1):
        if not name:
            raise ValidationError(f"empty ETL name at position {i} of pipeline {value!r}")
        validate_name(name)
    if len(names) > MAX_STAGES:
        raise ValidationError(
            f"pipeline {value!r} has {len(names)} ETLs, at most {MAX_STAGES} are allowed: "
            "split it into two jobs (bucket to bucket)"
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(
                f"ETL {name!r} appears twice in pipeline {pipeline_label(names)!r}: an ETL runs once per "
                "pipeline; init a second ETL with the same definition under another name"
            )
        seen.add(name)
    return tuple(names)


def pipeline_label(names: Sequence[str]) -> str:
    """Return how a chain is shown in stats and messages (AIS's CLI spelling)."""
    return ">>".join(names)
