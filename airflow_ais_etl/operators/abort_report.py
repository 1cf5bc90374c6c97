"""Say in one paragraph why a job was aborted, what was done and how to resume, for the task log.

An expected abort (a target left, a pod died, someone stopped the ETL) is not a bug: the task ends
with this paragraph and the failing target's pod log tail, raised without the engine's traceback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.errors import AbortError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_ais_etl.service import AisEtl

__all__ = ["LOG_TAIL_LINES", "abort_paragraph", "clear_abort_error", "failing_log_tail", "failing_target"]

LOG_TAIL_LINES = 20


def failing_target(cause: str, target_ids: Iterable[str]) -> str | None:
    """Return the target the cause names (``target t2 left``, ``pod of t1 exited ...``), if any."""
    for tid in sorted(target_ids, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(tid)}(?![\w-])", cause):
            return tid
    match = re.search(r"\btarget (\S+)", cause)
    return match.group(1) if match else None


def failing_log_tail(api: AisEtl, etl_names: Sequence[str], cause: str) -> tuple[str | None, str]:
    """Return the target the cause names and the last lines of its pods' logs ("" when none are left).

    Reads :meth:`~airflow_ais_etl.service.AisEtl.logs`: the running pods' logs, else those the
    stop or abort kept (both backends keep the last pods' logs until the ETL starts again).
    """
    try:
        target_ids = [t.id for t in api.backend.targets()]
    except Exception:
        target_ids = []
    target = failing_target(cause, target_ids)
    if not target:
        return None, ""
    try:
        logs = [p for name in etl_names for p in api.logs(name, target)]
    except Exception:  # e.g. the target's node left with its pod: the paragraph still stands
        return target, ""
    return target, "\n".join("\n".join(p.logs.splitlines()[-LOG_TAIL_LINES:]) for p in logs)


def abort_paragraph(etl_name: str, cause: str, stats: dict[str, Any], try_number: int, max_tries: int) -> str:
    """Return what happened, what was done and how to resume, as one paragraph."""
    done = stats.get("objects", 0)
    planned = stats.get("planned_objects", "?")
    skipped = stats.get("skipped", 0)
    errors = stats.get("error_count", 0)
    if try_number < max_tries:
        resume = (
            f"This was try {try_number} of {max_tries}: the retry restarts the ETL if it is stopped and "
            "resumes, skipping what is already written."
        )
    else:
        resume = (
            "To resume, clear this task (or rerun the DAG) once the cluster is back: the ETL is restarted "
            "from etl_definition, or start it with `ais-etl start` first, and objects already written are "
            "skipped."
        )
    return (
        f"The offline job of ETL {etl_name} was aborted: {cause}. Before the abort {done} of {planned} "
        f"object(s) were transformed ({skipped} skipped, {errors} failed); every result is written "
        "atomically, so the destination holds no partial object and the source is untouched. "
        f"{resume}"
    )


def clear_abort_error(
    exc: AbortError, etl_name: str, paragraph: str, log_tail: str, target: str | None
) -> AbortError:
    """Return the error the task raises: the paragraph (and the pod log tail), the cause and stats kept."""
    message = paragraph
    if target and log_tail:
        message += f"\nLast lines of the log of target {target}'s pod:\n{log_tail}"
    elif target:
        message += f"\n(The log of target {target}'s pod is not available: its pod is gone.)"
    err = AbortError(message, cause=exc.cause, etl_name=etl_name)
    err.stats = dict(getattr(exc, "stats", None) or {})  # type: ignore[attr-defined]
    return err
