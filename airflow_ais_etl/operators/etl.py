"""Operators that manage an ETL's lifecycle: init from code, init from a Pod spec, stop."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_ais_etl.etl.coerce import as_bool, as_str
from airflow_ais_etl.etl.constants import DEFAULT_TIMEOUT, HPUSH
from airflow_ais_etl.etl.definition import CODE_KEYS, SPEC_KEYS, EtlDefinition
from airflow_ais_etl.etl.duration import format_duration, parse_duration, probing_interval
from airflow_ais_etl.etl.errors import EtlNotFoundError
from airflow_ais_etl.etl.leases import DEFINITION_CHANGE_MODES, WAIT_THEN_REPLACE, EtlInUseError
from airflow_ais_etl.etl.msg import CODE, SPEC
from airflow_ais_etl.hooks.health import HealthVerdict, start_error, start_report
from airflow_ais_etl.operators.base import AisEtlBaseOperator, fail_without_retry, task_origin
from airflow_ais_etl.triggers.etl import AisEtlHealthTrigger, TriggerStatus, validate_trigger_event
from airflow_ais_etl.version_compat import conf

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_ais_etl.etlinfo import EtlInfo

__all__ = ["AisEtlInitCodeOperator", "AisEtlInitSpecOperator", "AisEtlStopOperator"]

_TRIGGER_SLACK = 30.0
"""Seconds past the ETL's startup timeout after which the trigger gives up (its own check times out first)."""


class _AisEtlInitOperator(AisEtlBaseOperator):
    """Initialise an ETL from the operator's fields, which carry the definition's argument names."""

    etl_kind: ClassVar[str]
    definition_keys: ClassVar[tuple[str, ...]]
    etl_name: str

    def definition(self) -> EtlDefinition:
        """Build the ETL definition from the rendered fields (a ``ValidationError`` says what is wrong)."""
        fields = {key: getattr(self, key) for key in self.definition_keys}
        return EtlDefinition.from_mapping(fields, kind=self.etl_kind)

    on_definition_change: str
    definition_change_timeout: str | float

    deferrable: bool

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_without_retry():
            self.persist_link(context, self.etl_name)
            mode = as_str("on_definition_change", self.on_definition_change)
            if mode not in DEFINITION_CHANGE_MODES:
                raise ValueError(f"on_definition_change must be one of {', '.join(DEFINITION_CHANGE_MODES)}")
            wait = parse_duration(self.definition_change_timeout)
            deferrable = as_bool("deferrable", self.deferrable)
            with self.acting(context):
                info = self.hook.api.init(
                    self.etl_name,
                    self.definition(),
                    origin=task_origin(context),
                    on_definition_change=mode,
                    definition_change_timeout=wait,
                    wait=not deferrable,
                )
        if deferrable:  # the startup timeout counts from here: the init may have waited for other runs' jobs
            self._defer_start(context, time.time())
        return self._report(info)

    def _defer_start(self, context: Context, started_at: float) -> None:
        """Hand the wait for the pods to the triggerer, unless one check says they are ready (or failed)."""
        api = self.hook.api
        report = start_report(api, self.etl_name, time.time() - started_at)
        if report.status == HealthVerdict.HEALTHY:
            return
        if report.status == HealthVerdict.FAILED:
            raise start_error(report.error, self.etl_name, report.message)
        timeout = api.view(self.etl_name).timeout or DEFAULT_TIMEOUT
        self.log.info(
            "%s; waiting in the triggerer (startup timeout %s)", report.message, format_duration(timeout)
        )
        origin = {key: value for key, value in asdict(task_origin(context)).items() if value is not None}
        self.defer(
            trigger=AisEtlHealthTrigger(
                etl_name=self.etl_name,
                ais_etl_conn_id=self.ais_etl_conn_id,
                end_time=started_at + timeout + _TRIGGER_SLACK,
                poll_interval=min(probing_interval(timeout), 1.0),
                started_at=started_at,
                origin=origin,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish a deferred start: return the ETL's info, or raise the start's error with no pod left."""
        event = validate_trigger_event(event)
        if event["status"] == TriggerStatus.SUCCESS:
            return self._report(self.hook.api.info(self.etl_name))
        with self.acting(context), contextlib.suppress(EtlNotFoundError, EtlInUseError):
            self.hook.api.stop(
                self.etl_name
            )  # after a timeout or a crashed check; another run's job keeps it
        if event.get("stack_trace"):
            self.log.error("trigger stack trace:\n%s", event["stack_trace"])
        raise start_error(event.get("error") or {}, self.etl_name, str(event.get("message") or ""))

    def _report(self, info: EtlInfo) -> dict[str, Any]:
        self.log.info("etl %s is %s with %s pod(s) (%s)", info.name, info.state, info.pods, info.comm_type)
        return info.to_dict()


class AisEtlInitCodeOperator(_AisEtlInitOperator):
    """Initialise an ETL from Python code: one transformation pod per target, left running.

    Re-running with the identical definition is a no-op (or a start when stopped), so retries are
    safe; a different definition under the same name replaces the ETL once no other run's job uses
    it (``on_definition_change``). The init holds a lease on the ETL while it runs.

    :param etl_name: ETL name (templated)
    :param code: module source defining the transform function (not templated: code may hold ``{{``)
    :param code_file: path of that module (templated)
    :param python_callable: a function defined in the DAG file; its source becomes the module and its
        name the transform function (it must import what it uses inside its body)
    :param transform: name of the transform function in ``code``/``code_file`` (templated)
    :param dependencies: requirement strings or a requirements text (templated)
    :param runtime: runtime name such as ``python3.11v2`` (templated; default: this interpreter's)
    :param comm_type: ``hpush://``, ``hpull://``, ``hrev://`` or ``io://`` (templated)
    :param arg_type: ``""``, ``url`` or ``fqn`` (templated)
    :param chunk_size: > 0 streams objects to ``transform(reader, writer)`` (templated)
    :param timeout: how long the pods may take to become ready, e.g. ``"45s"`` (templated)
    :param obj_timeout: how long one object's transform may take, e.g. ``"2m"`` (templated;
        default ``45s``, as AIS's ``obj_timeout``)
    :param env: extra environment variables of the pods (templated)
    :param pod_options: this ETL's pod options over the connection's, key by key: resources,
        image_pull_policy, image_pull_secrets, tolerations, pod_labels, pod_annotations,
        service_account_name, priority_class_name (templated; a dict or its JSON)
    :param replace: replace an existing ETL of that name with a different definition now (aborting
        the jobs that use it; same as ``on_definition_change="replace"``)
    :param on_definition_change: what to do when the ETL runs with another definition (e.g. a DAG
        run with changed params): ``"wait_then_replace"`` (default) replaces it once no job of another
        run holds a lease on it, waiting up to ``definition_change_timeout``; ``"replace_if_free"``
        fails at once naming the run that holds it; ``"replace"`` replaces it now; ``"refuse"``
        fails while it runs (AIS's ``ais etl init``) (templated)
    :param definition_change_timeout: how long ``wait_then_replace`` waits, e.g. ``"10m"`` (templated)
    :param protocol: transformer protocol, ``2025`` (default, AIS 2.x) or ``2024`` (templated)
    :param direct_put: pods deliver offline results to the target themselves (templated)
    :param deferrable: create the pods, then wait for them in Airflow's triggerer instead of on the
        worker (default: ``[operators] default_deferrable``); a pod that will never be ready fails
        the task with the same error and the same clean-up as the blocking wait, and the trigger
        holds the init's lease on the ETL while it waits
    :return: the ETL's info (name, state, pods, ...)
    """

    etl_kind = CODE
    definition_keys = CODE_KEYS
    template_fields: Sequence[str] = (
        "etl_name",
        "code_file",
        "transform",
        "dependencies",
        "runtime",
        "comm_type",
        "arg_type",
        "chunk_size",
        "timeout",
        "obj_timeout",
        "env",
        "pod_options",
        "protocol",
        "direct_put",
        "on_definition_change",
        "definition_change_timeout",
        "ais_etl_conn_id",
    )
    template_fields_renderers = {"env": "json", "pod_options": "json", "dependencies": "py"}

    def __init__(
        self,
        *,
        etl_name: str,
        code: str | None = None,
        code_file: str | None = None,
        python_callable: Callable[..., Any] | None = None,
        transform: str | None = None,
        dependencies: str | Sequence[str] | None = None,
        runtime: str | None = None,
        comm_type: str = HPUSH,
        arg_type: str = "",
        chunk_size: int | str = 0,
        timeout: str | float = "45s",
        obj_timeout: str | float | None = None,
        env: Mapping[str, str] | None = None,
        pod_options: Mapping[str, Any] | str | None = None,
        replace: bool = False,
        on_definition_change: str = WAIT_THEN_REPLACE,
        definition_change_timeout: str | float = "10m",
        protocol: str = "",
        direct_put: bool | str = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.etl_name = etl_name
        self.code = code
        self.code_file = code_file
        self.python_callable = python_callable
        self.transform = transform
        self.dependencies = dependencies
        self.runtime = runtime
        self.comm_type = comm_type
        self.arg_type = arg_type
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.obj_timeout = obj_timeout
        self.env = env or {}
        self.pod_options = pod_options
        self.replace = replace
        self.on_definition_change = on_definition_change
        self.definition_change_timeout = definition_change_timeout
        self.protocol = protocol
        self.direct_put = direct_put
        self.deferrable = deferrable


class AisEtlInitSpecOperator(_AisEtlInitOperator):
    """Initialise an ETL from a Pod spec whose container speaks the transformer protocol.

    :param etl_name: ETL name (templated)
    :param spec: the Pod spec or an AIS runtime spec (``etl_spec.yaml``) as a dict, YAML/JSON text, or
        a ``.yaml``/``.json`` file path (templated); what it declares (Pod annotations, runtime-spec
        fields) applies unless given here
    :param comm_type: ``hpush://``, ``hpull://``, ``hrev://`` or ``io://`` (templated; default hpush)
    :param arg_type: ``""``, ``url`` or ``fqn`` (templated)
    :param timeout: how long the pods may take to become ready (templated; default 45s)
    :param obj_timeout: how long one object's transform may take (templated)
    :param env: extra environment variables of the pods (templated)
    :param pod_options: this ETL's pod options over the connection's, key by key: resources,
        image_pull_policy, image_pull_secrets, tolerations, pod_labels, pod_annotations,
        service_account_name, priority_class_name (templated; a dict or its JSON)
    :param replace: replace an existing ETL of that name with a different definition now (aborting
        the jobs that use it; same as ``on_definition_change="replace"``)
    :param on_definition_change: what to do when the ETL runs with another definition (e.g. a DAG
        run with changed params): ``"wait_then_replace"`` (default) replaces it once no job of another
        run holds a lease on it, waiting up to ``definition_change_timeout``; ``"replace_if_free"``
        fails at once naming the run that holds it; ``"replace"`` replaces it now; ``"refuse"``
        fails while it runs (AIS's ``ais etl init``) (templated)
    :param definition_change_timeout: how long ``wait_then_replace`` waits, e.g. ``"10m"`` (templated)
    :param protocol: transformer protocol, ``2025`` (default, AIS 2.x) or ``2024`` (templated)
    :param direct_put: pods deliver offline results to the target themselves (templated)
    :param deferrable: create the pods, then wait for them in the triggerer (default:
        ``[operators] default_deferrable``); see :class:`AisEtlInitCodeOperator`
    :return: the ETL's info
    """

    etl_kind = SPEC
    definition_keys = SPEC_KEYS
    template_fields: Sequence[str] = (
        "etl_name",
        "spec",
        "comm_type",
        "arg_type",
        "timeout",
        "obj_timeout",
        "env",
        "pod_options",
        "protocol",
        "direct_put",
        "on_definition_change",
        "definition_change_timeout",
        "ais_etl_conn_id",
    )
    template_fields_renderers = {"spec": "yaml", "env": "json", "pod_options": "json"}

    def __init__(
        self,
        *,
        etl_name: str,
        spec: str | Mapping[str, Any],
        comm_type: str | None = None,
        arg_type: str | None = None,
        timeout: str | float | None = None,
        obj_timeout: str | float | None = None,
        env: Mapping[str, str] | None = None,
        pod_options: Mapping[str, Any] | str | None = None,
        replace: bool = False,
        on_definition_change: str = WAIT_THEN_REPLACE,
        definition_change_timeout: str | float = "10m",
        protocol: str = "",
        direct_put: bool | str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.etl_name = etl_name
        self.spec = spec
        self.comm_type = comm_type
        self.arg_type = arg_type
        self.timeout = timeout
        self.obj_timeout = obj_timeout
        self.env = env or {}
        self.pod_options = pod_options
        self.replace = replace
        self.on_definition_change = on_definition_change
        self.definition_change_timeout = definition_change_timeout
        self.protocol = protocol
        self.direct_put = direct_put
        self.deferrable = deferrable


class AisEtlStopOperator(AisEtlBaseOperator):
    """Stop an ETL's pods (its definition stays); idempotent, so it is safe as a teardown.

    Stopping a stopped or never-initialised ETL succeeds. An ETL that a job of another DAG run (or
    another user's process) still uses, by its lease, is left running: the task logs who holds it
    and succeeds, and the last run's teardown stops it. ``force=True`` stops it anyway; the jobs it
    aborts then report that this task stopped the ETL.

    :param etl_name: the ETL to stop (templated)
    :param all_etls: stop every running ETL instead
    :param force: stop even an ETL that other runs' jobs hold (templated)
    :return: ``{"stopped": [names that were running], "left_running": {name: [holders]}}``
    """

    template_fields: Sequence[str] = ("etl_name", "force", "ais_etl_conn_id")

    def __init__(
        self, *, etl_name: str | None = None, all_etls: bool = False, force: bool | str = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.etl_name = etl_name
        self.all_etls = all_etls
        self.force = force

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_without_retry():
            all_etls = as_bool("all_etls", self.all_etls)
            force = as_bool("force", self.force)
            if all_etls == bool(self.etl_name):
                raise ValueError("give either etl_name or all_etls=True")
        with self.acting(context):
            if all_etls:
                stopped = self.hook.api.stop_all(force=force)
                self.log.info("stopped %s running etl(s): %s", len(stopped), ", ".join(stopped) or "none")
                return {"stopped": stopped}
            name = str(self.etl_name)
            self.persist_link(context, name)
            try:
                with fail_without_retry():
                    was_running = self.hook.api.stop(name, force=force)
            except EtlNotFoundError:
                self.log.info("etl %s does not exist: nothing to stop", name)
                return {"stopped": []}
            except EtlInUseError as exc:
                self.log.warning(
                    "etl %s left running: still in use by %s (force=True stops it anyway)",
                    name,
                    "; ".join(exc.holders),
                )
                return {"stopped": [], "left_running": {name: exc.holders}}
        self.log.info("etl %s %s", name, "stopped" if was_running else "was not running")
        return {"stopped": [name] if was_running else []}
