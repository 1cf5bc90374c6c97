"""Target ids of the local cluster: what a valid one looks like and how they sort (t2 before t10)."""

from __future__ import annotations

from typing import Any

from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["tid_order", "validate_target_id"]


def tid_order(item: tuple[str, Any]) -> tuple[int, str]:
    tid = item[0]
    digits = tid[1:]
    return (int(digits) if digits.isdigit() else 1 << 30, tid)


def validate_target_id(tid: str) -> None:
    if not tid or len(tid) > 20 or not all(c.isalnum() or c in "-_" for c in tid):
        raise ValidationError(f"invalid target id {tid!r}: use up to 20 letters, digits, '-' or '_'")
