"""Operators that transform data through a running ETL: a whole bucket (offline) or one object (inline)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
from airflow_ais_etl.dataplane.progress import progress_line
from airflow_ais_etl.etl.coerce import as_bool, as_float, as_int, as_str, as_str_list, as_str_map
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.errors import AbortError, EtlNotFoundError, ValidationError
from airflow_ais_etl.etl.pipeline import parse_pipeline, pipeline_label
from airflow_ais_etl.etl.state import EtlState
from airflow_ais_etl.exceptions import AisEtlTaskKilledError
from airflow_ais_etl.links.jobfeed import PUBLISH_SECONDS, JobFeed
from airflow_ais_etl.operators.abort_report import (
    abort_paragraph,
    clear_abort_error,
    failing_log_tail,
)
from airflow_ais_etl.operators.base import AisEtlBaseOperator, fail_without_retry, task_origin

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_ais_etl.etl.origin import Origin

__all__ = ["AisEtlBucketTransformOperator", "AisEtlObjectTransformOperator"]

KILL_CAUSE = "task killed"


def etl_target(etl_name: str | Sequence[str]) -> str | tuple[str, ...]:
    """Return what the service runs: one ETL name, or a pipeline's names (``a>>b``, ``a,b`` or a list)."""
    names = parse_pipeline(etl_name)
    return names[0] if len(names) == 1 else names


class AisEtlBucketTransformOperator(AisEtlBaseOperator):
    """Stream every selected object of ``src`` through an ETL into ``dst`` (an offline transform).

    Progress goes to the task log every ``progress_interval`` seconds; the stats dict is returned
    (XCom). A membership change (a target joined or left) aborts the job: the task fails with the
    model's ``AbortError`` and logs the cause and how much was done. A retry resumes with
    ``skip_existing``; with ``etl_definition`` it also re-initialises or restarts an ETL that the
    abort stopped, so a retry heals itself. Results are written atomically: no partial objects.

    :param etl_name: the ETL, or a pipeline: ``"etl-1>>etl-2"``, ``"etl-1,etl-2"`` or a list of names;
        each object passes every ETL in one pass, only the last result is written (templated)
    :param src: source bucket: a directory, ``file://`` URL or object-store URL (templated)
    :param dst: destination bucket (templated)
    :param prefix: select source objects by name prefix (templated)
    :param objects: explicit source object names (templated)
    :param template: names like ``shard-{0000..0099}.tar`` (templated)
    :param ext: extension map for destination names, e.g. ``{"jpg": "txt"}`` (templated)
    :param prepend: prefix added to destination names (templated)
    :param dry_run: count what would be transformed, transform nothing
    :param continue_on_error: record failed objects and go on instead of failing (templated)
    :param request_timeout: per-object timeout in seconds (templated)
    :param num_workers: requests in flight per target (templated)
    :param skip_existing: skip objects already transformed by this ETL definition (templated; forced on
        retries)
    :param progress_interval: seconds between progress lines (templated)
    :param etl_args: per-request arguments for every object's transform, AIS's ``etl_args`` (templated)
    :param shard: with ``shards``: transform only shard ``shard`` (0 ≤ shard < shards) of the selected
        objects, those whose CRC-32 name hash is ``shard`` modulo ``shards``; map the operator over
        ``range(shards)`` to split a bucket over Airflow workers (templated)
    :param shards: the number of hash shards (templated)
    :param etl_definition: ``{"kind": "code"|"spec", **init arguments}`` (the init operators'
        arguments, see :meth:`~airflow_ais_etl.etl.definition.EtlDefinition.from_mapping`) used to
        initialise or start the ETL when it is missing or not running (templated: prefer
        ``python_callable`` over a ``code`` string in it); for a pipeline, a mapping of ETL name to
        such a definition (ETLs without one must be running)
    :param src_conn_id: Airflow connection of an object-store source (templated)
    :param dst_conn_id: Airflow connection of an object-store destination (templated)
    :return: the job's stats (objects, bytes in/out, skipped, errors, per-target counts, ...)
    """

    template_fields: Sequence[str] = (
        "etl_name",
        "src",
        "dst",
        "prefix",
        "objects",
        "template",
        "ext",
        "prepend",
        "request_timeout",
        "num_workers",
        "progress_interval",
        "etl_args",
        "shard",
        "shards",
        "skip_existing",
        "continue_on_error",
        "etl_definition",
        "src_conn_id",
        "dst_conn_id",
        "ais_etl_conn_id",
    )
    template_fields_renderers = {"ext": "json", "objects": "json"}

    def __init__(
        self,
        *,
        etl_name: str | Sequence[str],
        src: str,
        dst: str,
        prefix: str = "",
        objects: Sequence[str] | None = None,
        template: str | None = None,
        ext: Mapping[str, str] | None = None,
        prepend: str = "",
        dry_run: bool = False,
        continue_on_error: bool = False,
        request_timeout: float | None = None,
        num_workers: int | str = 8,
        skip_existing: bool = False,
        progress_interval: float | str = 30.0,
        etl_args: str = "",
        shard: int | str | None = None,
        shards: int | str | None = None,
        etl_definition: Mapping[str, Any] | None = None,
        src_conn_id: str | None = None,
        dst_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.etl_name = etl_name
        self.src = src
        self.dst = dst
        self.prefix = prefix
        self.objects = objects
        self.template = template
        self.ext = ext
        self.prepend = prepend
        self.dry_run_only = dry_run
        self.continue_on_error = continue_on_error
        self.request_timeout = request_timeout
        self.num_workers = num_workers
        self.skip_existing = skip_existing
        self.progress_interval = progress_interval
        self.etl_args = etl_args
        self.shard = shard
        self.shards = shards
        self.etl_definition = etl_definition
        self.src_conn_id = src_conn_id
        self.dst_conn_id = dst_conn_id
        self._killed = False
        self._control: JobControl | None = None
        self._context: Context | None = None

    # ------------------------------------------------------------------ arguments
    def build_options(self) -> OfflineOptions:
        """Return the validated :class:`OfflineOptions` of the rendered fields (a ``ValidationError``)."""
        etl_target(self.etl_name)
        for name in ("src", "dst"):
            if not as_str(name, getattr(self, name)):
                raise ValidationError(f"{name} must be a non-empty string")
        objects = None if self.objects is None else as_str_list("objects", self.objects)
        options = OfflineOptions(
            prefix=as_str("prefix", self.prefix or ""),
            objects=tuple(objects) if objects else None,
            template=as_str("template", self.template) if self.template else None,
            ext=as_str_map("ext", self.ext) or None,
            prepend=as_str("prepend", self.prepend or ""),
            dry_run=as_bool("dry_run", self.dry_run_only),
            continue_on_error=as_bool("continue_on_error", self.continue_on_error),
            request_timeout=None
            if self.request_timeout in (None, "")
            else as_float("request_timeout", self.request_timeout),
            num_workers=as_int("num_workers", self.num_workers, minimum=1),
            skip_existing=as_bool("skip_existing", self.skip_existing),
            progress_interval=as_float("progress_interval", self.progress_interval),
            etl_args=as_str("etl_args", self.etl_args or ""),
            shard=self._shard(),
        )
        options.validate()
        return options

    def _shard(self) -> tuple[int, int] | None:
        """Return ``(shard, shards)`` when both are given (templates render them as text)."""
        given = [v not in (None, "") for v in (self.shard, self.shards)]
        if not any(given):
            return None
        if not all(given):
            raise ValidationError(
                "give both shard and shards (this task's shard index and their number), or neither"
            )
        return as_int("shard", self.shard, minimum=0), as_int("shards", self.shards, minimum=1)

    def build_definition(self) -> EtlDefinition | None:
        """Return the rendered ``etl_definition`` as an :class:`EtlDefinition` (None when not given)."""
        if self.etl_definition is None:
            return None
        return EtlDefinition.from_mapping(self.etl_definition)

    def build_definitions(self) -> dict[str, EtlDefinition]:
        """Return the definition of each ETL that has one: ``etl_definition``, per ETL for a pipeline."""
        names = parse_pipeline(self.etl_name)
        if self.etl_definition is None:
            return {}
        if len(names) == 1:
            return {names[0]: EtlDefinition.from_mapping(self.etl_definition)}
        unknown = sorted(set(self.etl_definition) - set(names))
        if unknown or not all(isinstance(v, dict) for v in self.etl_definition.values()):
            raise ValidationError(
                f"for pipeline {'>>'.join(names)}, etl_definition maps ETL names of the pipeline to "
                f"definitions ({{name: {{'kind': 'code', ...}}}}); got keys {sorted(self.etl_definition)}"
            )
        return {n: EtlDefinition.from_mapping(d) for n, d in self.etl_definition.items()}

    # ------------------------------------------------------------------ running
    def _ensure_running(self, definitions: dict[str, EtlDefinition], origin: Origin | None = None) -> bool:
        """Init or start each ETL that has a definition when it is missing or not running.

        Return whether any had to. ``origin`` (this task) labels and annotates the pods it starts.
        """
        healed = False
        for name, definition in definitions.items():
            healed = self._ensure_one(name, definition, origin) or healed
        return healed

    def _ensure_one(self, name: str, definition: EtlDefinition, origin: Origin | None) -> bool:
        api = self.hook.api
        try:
            info = api.info(name)
        except EtlNotFoundError:
            self.log.warning("etl %s does not exist: initialising it from etl_definition", name)
            api.init(name, definition, origin=origin)
            return True
        if info.state == EtlState.RUNNING:
            return False
        reason = f" ({info.cause})" if info.cause else ""
        self.log.warning("etl %s is %s%s: starting it again", name, info.state, reason)
        api.start(name, origin=origin)
        return True

    @property
    def label(self) -> str:
        """The ETL's name, or the pipeline as ``etl-1>>etl-2`` (messages and logs)."""
        return pipeline_label(parse_pipeline(self.etl_name))

    def _log_progress(self, stats: dict[str, Any]) -> None:
        self.log.info("etl %s: %s", self.label, progress_line(stats))

    def _killed_error(
        self, stats: dict[str, Any] | None, exc: BaseException | None = None
    ) -> AisEtlTaskKilledError:
        done = (
            f"; {stats.get('objects', 0)} of {stats.get('planned_objects', 0)} object(s) done"
            if stats
            else ""
        )
        return AisEtlTaskKilledError(
            f"etl job aborted: {KILL_CAUSE}{done}; the task was killed and fails (a rerun resumes)",
            etl_name=self.label,
            stats=stats,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        if self._killed:
            raise self._killed_error(None)
        with fail_without_retry():
            options = self.build_options()
            definitions = self.build_definitions()
        control = JobControl()
        self._control = control
        if self._killed:  # on_kill ran before the control existed
            control.abort(KILL_CAUSE)
        self.persist_link(context, parse_pipeline(self.etl_name)[0])
        try:
            with self.acting(context), self.hook.api.lease(self.etl_name):  # no teardown stops it meanwhile
                with fail_without_retry():
                    healed = self._ensure_running(definitions, task_origin(context))
                ti = context.get("ti")
                retry = int(getattr(ti, "try_number", 1) or 1) > 1
                if (healed or retry) and not options.skip_existing:
                    self.log.info(
                        "resuming: objects this ETL already transformed into %s are skipped", self.dst
                    )
                    options = replace(options, skip_existing=True)
                self._context = context
                stats = self._run(options, control, self._feed(context, options))
        finally:
            self._control = None
        if self._killed:
            raise self._killed_error(stats)
        self.log.info(
            "etl %s: %s object(s) transformed, %s skipped, %s error(s); %s -> %s",
            self.label,
            stats.get("objects"),
            stats.get("skipped"),
            stats.get("error_count"),
            stats.get("src"),
            stats.get("dst"),
        )
        return stats

    def _feed(self, context: Context, options: OfflineOptions) -> JobFeed:
        """Return the progress callback: the ETL view gets every snapshot, the log one per interval."""
        return JobFeed(
            context,
            parse_pipeline(self.etl_name)[0],  # a pipeline's job shows under its first ETL
            str(self.ais_etl_conn_id),
            log_every=options.progress_interval,
            log_line=self._log_progress,
        )

    def _run(self, options: OfflineOptions, control: JobControl, feed: JobFeed) -> dict[str, Any]:
        options = replace(options, progress_interval=min(options.progress_interval, PUBLISH_SECONDS))
        try:
            with fail_without_retry():
                return self.hook.api.transform_bucket(
                    etl_target(self.etl_name),
                    self.src,
                    self.dst,
                    options,
                    progress=feed,
                    control=control,
                    src_conn_id=self.src_conn_id or None,
                    dst_conn_id=self.dst_conn_id or None,
                )
        except AbortError as exc:
            stats = dict(getattr(exc, "stats", None) or {})
            if self._killed or exc.cause == KILL_CAUSE:
                raise self._killed_error(stats, exc) from exc
            raise self._clear_abort(exc, stats) from None  # the paragraph says it all: no engine traceback

    def _clear_abort(self, exc: AbortError, stats: dict[str, Any]) -> AbortError:
        """Return the readable abort: what happened, what was done, how to resume, the pod log tail."""
        cause = exc.cause or str(exc)
        ti = self._context.get("ti") if self._context else None
        try_number = int(getattr(ti, "try_number", 1) or 1)
        paragraph = abort_paragraph(self.label, cause, stats, try_number, int(self.retries or 0) + 1)
        target, tail = failing_log_tail(self.hook.api, parse_pipeline(self.etl_name), cause)
        return clear_abort_error(exc, self.label, paragraph, tail, target)

    def on_kill(self) -> None:
        """Abort the running job (no partial objects are left); ``execute`` then raises."""
        self._killed = True
        control = self._control
        if control is not None:
            control.abort(KILL_CAUSE)


class AisEtlObjectTransformOperator(AisEtlBaseOperator):
    """Transform one object inline, into a destination bucket object or a local file.

    :param etl_name: the ETL, or a pipeline: ``"etl-1>>etl-2"``, ``"etl-1,etl-2"`` or a list of names
        (templated)
    :param src: source bucket (templated)
    :param obj: source object name (templated)
    :param dst: destination bucket (templated); give this or ``local_file``
    :param dst_name: destination object name (templated; default: ``obj``)
    :param local_file: local file path to write the result to (templated)
    :param request_timeout: seconds for the pod's answer (templated)
    :param etl_args: per-request arguments for the transform, AIS's ``etl_args`` (templated)
    :param src_conn_id: Airflow connection of an object-store source (templated)
    :param dst_conn_id: Airflow connection of an object-store destination (templated)
    :return: a summary: object, source, destination, bytes in/out
    """

    template_fields: Sequence[str] = (
        "etl_name",
        "src",
        "obj",
        "dst",
        "dst_name",
        "local_file",
        "request_timeout",
        "etl_args",
        "src_conn_id",
        "dst_conn_id",
        "ais_etl_conn_id",
    )

    def __init__(
        self,
        *,
        etl_name: str | Sequence[str],
        src: str,
        obj: str,
        dst: str | None = None,
        dst_name: str | None = None,
        local_file: str | None = None,
        request_timeout: float | None = None,
        etl_args: str = "",
        src_conn_id: str | None = None,
        dst_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.etl_args = etl_args
        self.etl_name = etl_name
        self.src = src
        self.obj = obj
        self.dst = dst
        self.dst_name = dst_name
        self.local_file = local_file
        self.request_timeout = request_timeout
        self.src_conn_id = src_conn_id
        self.dst_conn_id = dst_conn_id

    def _validate(self) -> float | None:
        etl_target(self.etl_name)
        for name in ("src", "obj"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if bool(self.dst) == bool(self.local_file):
            raise ValueError("give exactly one of dst (a bucket) or local_file (a path)")
        if self.dst_name and not self.dst:
            raise ValueError("dst_name needs dst (a local_file is named by its path)")
        if self.request_timeout in (None, ""):
            return None
        return as_float("request_timeout", self.request_timeout)

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_without_retry():
            timeout = self._validate()
        self.persist_link(context, parse_pipeline(self.etl_name)[0])
        with fail_without_retry(), self.acting(context):
            if self.dst:
                result = self.hook.api.transform_object(
                    etl_target(self.etl_name),
                    self.src,
                    self.obj,
                    dst=self.dst,
                    dst_name=self.dst_name or None,
                    src_conn_id=self.src_conn_id or None,
                    dst_conn_id=self.dst_conn_id or None,
                    timeout=timeout,
                    etl_args=as_str("etl_args", self.etl_args or ""),
                )
                if not isinstance(result, dict):
                    raise TypeError("the service returned bytes for a bucket destination")
                summary = dict(result)
            else:
                data = self.hook.api.transform_object(
                    etl_target(self.etl_name),
                    self.src,
                    self.obj,
                    src_conn_id=self.src_conn_id or None,
                    timeout=timeout,
                    etl_args=as_str("etl_args", self.etl_args or ""),
                )
                if not isinstance(data, bytes):
                    raise TypeError("the service returned a summary instead of the object's bytes")
                path = write_file_atomic(str(self.local_file), data)
                summary = {"object": self.obj, "src": self.src, "local_file": path, "bytes_out": len(data)}
        self.log.info(
            "etl %s: %s/%s -> %s",
            pipeline_label(parse_pipeline(self.etl_name)),
            self.src,
            self.obj,
            summary.get("local_file") or summary.get("dst"),
        )
        return summary


def write_file_atomic(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` so that it is complete or absent; return the absolute path."""
    path = os.path.abspath(os.path.expanduser(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ais-etl-tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
