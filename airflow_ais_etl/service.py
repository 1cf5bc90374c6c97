"""The ETL service: the one Python API behind the CLI, the Airflow hook and the benchmarks.

It validates messages, keeps the MD, asks the backend to start/stop pods, and runs inline and
offline transforms. State lives in the backend (the cluster), never in this object, so init,
transform and stop may run in different processes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from airflow_ais_etl.cluster.inlinelease import kept_chain_leases
from airflow_ais_etl.cluster.jobrecorder import recorded_job
from airflow_ais_etl.cluster.leases import hold_chain_leases, hold_lease, live_leases, this_holder
from airflow_ais_etl.etl.coerce import as_float, as_str, describe
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.errors import EtlExistsError, EtlNotFoundError, ValidationError
from airflow_ais_etl.etl.leases import (
    DEFINITION_CHANGE_MODES,
    REFUSE,
    REPLACE,
    WAIT_THEN_REPLACE,
    EtlInUseError,
    Lease,
    blocking,
    describe_leases,
)
from airflow_ais_etl.etl.msg import CODE, SPEC, obj_timeout_of, to_wire
from airflow_ais_etl.etl.pipeline import parse_pipeline
from airflow_ais_etl.etl.state import etl_state
from airflow_ais_etl.etl.validation import validate, validate_name
from airflow_ais_etl.etlinfo import EtlInfo
from airflow_ais_etl.startwait import wait_started

if TYPE_CHECKING:
    import builtins
    import contextlib
    from collections.abc import Callable, Sequence
    from typing import TypeAlias

    from airflow_ais_etl.cluster.base import Backend, HealthStatus, PodLogs, PodMetrics
    from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.origin import Origin

log = logging.getLogger(__name__)

INIT, OFFLINE, INLINE = "init", "offline transform", "inline transform"
"""What a lease is for (its ``purpose``): init leases keep a stop away, job leases a definition change too."""
DEFINITION_CHANGE_TIMEOUT = 600.0
"""Seconds ``wait_then_replace`` waits for the jobs that use an ETL before it fails."""
_WAIT_POLL = 1.0

_P = ParamSpec("_P")
_R = TypeVar("_R")
if TYPE_CHECKING:
    _Name: TypeAlias = str | Sequence[str]
    """One ETL name, or a pipeline (``a>>b`` or a list of names)."""


def _leased(
    purpose: str,
    hold: Callable[[Backend, _Name, str], contextlib.AbstractContextManager[None]] = hold_chain_leases,
) -> Callable[[Callable[Concatenate[AisEtl, _Name, _P], _R]], Callable[Concatenate[AisEtl, _Name, _P], _R]]:
    """Hold a lease on the ETL(s) named by the method's first argument while the method runs."""

    def wrap(
        method: Callable[Concatenate[AisEtl, _Name, _P], _R],
    ) -> Callable[Concatenate[AisEtl, _Name, _P], _R]:
        @functools.wraps(method)
        def run(self: AisEtl, name: _Name, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with hold(self.backend, name, purpose):
                return method(self, name, *args, **kwargs)

        return run

    return wrap


class AisEtl:
    """The ETL API over one backend (``local`` by default)."""

    def __init__(self, backend: Backend | None = None) -> None:
        if backend is None:
            from airflow_ais_etl.cluster.local.backend import LocalBackend

            backend = LocalBackend()
        self.backend = backend

    @classmethod
    def local(cls, home: str | None = None) -> AisEtl:
        """Return the API over the embedded local cluster at ``home`` (default ``$AIS_ETL_HOME``)."""
        from airflow_ais_etl.cluster.local.backend import LocalBackend

        return cls(LocalBackend(home))

    # ------------------------------------------------------------------ lifecycle
    def init(
        self,
        name: str,
        definition: EtlDefinition,
        origin: Origin | None = None,
        *,
        on_definition_change: str | None = None,
        definition_change_timeout: float = DEFINITION_CHANGE_TIMEOUT,
        wait: bool = True,
    ) -> EtlInfo:
        """Initialise ETL ``name`` from ``definition`` on every target; its env is stored with it.

        Re-initialising the identical definition is a no-op that reports the running ETL (safe for
        task retries) or starts it when stopped. A different one replaces a stopped ETL (no job can
        be using it, so a DAG run with changed params just works); while the ETL runs,
        ``on_definition_change`` decides (:data:`~airflow_ais_etl.etl.leases.DEFINITION_CHANGE_MODES`):
        ``refuse`` (the default here, as AIS), ``replace_if_free`` (unless another run's job holds
        a lease on it), ``wait_then_replace`` (wait up to ``definition_change_timeout`` seconds for
        those jobs) or ``replace`` (now; so does ``definition.replace``). The pod options are part of
        the definition. ``origin`` (the Airflow task) labels and annotates the objects created; it
        is not part of the definition, so it never makes a re-init differ. The init holds a lease.
        ``wait=False`` returns once the pods are created (:mod:`~airflow_ais_etl.startwait` polls them).
        """
        msg = validate(definition.to_msg(name))
        env, options = dict(definition.env), dict(definition.pod_options)
        mode = REPLACE if definition.replace else (on_definition_change or REFUSE)
        if mode not in DEFINITION_CHANGE_MODES:
            raise ValidationError(
                f"on_definition_change must be one of {', '.join(DEFINITION_CHANGE_MODES)}, got {mode!r}"
            )
        deadline = time.monotonic() + max(0.0, float(definition_change_timeout))
        waiting_for = ""
        with hold_lease(self.backend, name, INIT):
            while True:
                with self.backend.lifecycle():  # racing inits: the later one sees the earlier one's ETL
                    done = self._init(msg, env, options, mode, origin, wait)
                if isinstance(done, EtlInfo):
                    if wait:  # an identical ETL another init started without waiting may still start
                        wait_started(self.backend, msg)
                    return done
                if mode != WAIT_THEN_REPLACE or time.monotonic() >= deadline:
                    raise EtlInUseError(
                        f"etl runs another definition and is in use: {describe_leases(done)}; it was not "
                        + ("replaced within the wait" if mode == WAIT_THEN_REPLACE else "replaced")
                        + ". Let those jobs finish (on_definition_change='wait_then_replace'), replace it "
                        "now and abort them (on_definition_change='replace' or replace=True), or use another "
                        "ETL name",
                        etl_name=name,
                        holders=[lease.describe() for lease in done],
                    )
                if describe_leases(done) != waiting_for:  # once per set of holders, not every second
                    waiting_for = describe_leases(done)
                    log.warning("etl %s: waiting to replace its definition: in use: %s", name, waiting_for)
                time.sleep(max(0.0, min(_WAIT_POLL, deadline - time.monotonic())))

    def _init(
        self,
        msg: InitMsg,
        env: dict[str, str],
        options: dict[str, Any],
        mode: str,
        origin: Origin | None,
        wait: bool,
    ) -> EtlInfo | list[Lease]:
        """Init under the lifecycle lock; return the leases that keep a running ETL from being replaced."""
        md = self.backend.read_md()
        existing = md.get(msg.name)
        if existing is not None:
            same = (to_wire(existing), md.env_of(msg.name), md.pod_options_of(msg.name)) == (
                to_wire(msg),
                env,
                options,
            )
            running = self._running(msg.name)
            if same and running:
                return self.info(msg.name)
            if not same and running and mode == REFUSE:
                raise EtlExistsError(
                    "etl already exists with a different definition and is running (a job of another "
                    "DAG run may be using it); stop it first (ais-etl stop NAME), pass replace=True "
                    "(CLI: --replace) to replace it now, on_definition_change='wait_then_replace' to "
                    "replace it once no job uses it, or choose another name",
                    etl_name=msg.name,
                )
            if not same and running and mode != REPLACE:
                jobs = [lease for lease in self._blocking(msg.name) if lease.purpose != INIT]
                if jobs:
                    return jobs
            self.backend.stop_pods(msg.name, cause=self._stopped_by(msg.name, " to replace its definition"))
        self._start_pods(msg, env, origin, options, wait)
        self.backend.update_md(lambda md: md.add(msg, env, options))
        return self.info(msg.name)

    def init_code(
        self,
        name: str,
        code: str,
        *,
        on_definition_change: str | None = None,
        definition_change_timeout: float = DEFINITION_CHANGE_TIMEOUT,
        **options: Any,
    ) -> EtlInfo:
        """Initialise ``name`` from Python code: ``init`` of the code definition built from ``options``.

        ``options`` are those of :meth:`EtlDefinition.from_mapping` (``comm_type``, ``dependencies``,
        ``env``, ...); an unknown one is a :class:`ValidationError` listing the allowed ones.
        """
        definition = EtlDefinition.from_mapping({**options, "code": code}, kind=CODE)
        return self.init(
            name,
            definition,
            on_definition_change=on_definition_change,
            definition_change_timeout=definition_change_timeout,
        )

    def init_spec(
        self,
        name: str,
        spec: str,
        *,
        on_definition_change: str | None = None,
        definition_change_timeout: float = DEFINITION_CHANGE_TIMEOUT,
        **options: Any,
    ) -> EtlInfo:
        """Initialise ``name`` from a Pod spec (YAML/JSON text, a dict or a file path); see :meth:`init_code`."""
        definition = EtlDefinition.from_mapping({**options, "spec": spec}, kind=SPEC)
        return self.init(
            name,
            definition,
            on_definition_change=on_definition_change,
            definition_change_timeout=definition_change_timeout,
        )

    def start(self, name: str, origin: Origin | None = None) -> EtlInfo:
        """Start a stopped ETL from its MD entry (a running one is left as is); see :meth:`init` for ``origin``."""
        with self.backend.lifecycle():
            msg = self.view(name)
            if not self._running(name):
                self.backend.stop_pods(name)
                md = self.backend.read_md()
                self._start_pods(msg, md.env_of(name), origin, md.pod_options_of(name))
            return self.info(name)

    def _start_pods(
        self,
        msg: InitMsg,
        env: dict[str, str],
        origin: Origin | None,
        options: dict[str, Any],
        wait: bool = True,
    ) -> None:
        labels, annotations = (origin.labels(), origin.annotations()) if origin else (None, None)
        self.backend.start_pods(
            msg, extra_env=env, labels=labels, annotations=annotations, pod_options=options or None, wait=wait
        )
        if not wait:
            return
        from airflow_ais_etl.dataplane.protoprobe import check_fqn_protocol

        try:
            check_fqn_protocol(msg, self.backend.endpoints(msg.name))
        except BaseException:
            self.backend.stop_pods(msg.name)
            raise

    def stop(self, name: str, *, force: bool = False) -> bool:
        """Stop the pods of ``name``, keeping its definition; stopping a stopped ETL succeeds.

        Returns whether pods were running. An unknown name is an error. While another holder (a
        job of another DAG run, another process) holds a lease on it, the ETL is left running and
        :class:`~airflow_ais_etl.etl.leases.EtlInUseError` names the holders, unless ``force``
        (which aborts those jobs; their abort names who stopped the ETL).
        """
        validate_name(name)
        with self.backend.lifecycle():
            if self.backend.read_md().get(name) is None and not self.backend.endpoints(name):
                raise EtlNotFoundError(f"etl job {name} does not exist", etl_name=name)
            return self._stop(name, force)

    def _stop(self, name: str, force: bool) -> bool:
        held = self._blocking(name) if self._running(name) else []
        if held and not force:
            raise EtlInUseError(
                f"etl is in use: {describe_leases(held)}; it was left running (stop it with force to "
                "abort those jobs)",
                etl_name=name,
                holders=[lease.describe() for lease in held],
            )
        if held:
            log.warning("etl %s: stopping it by force aborts %s", name, describe_leases(held))
        return self.backend.stop_pods(name, cause=self._stopped_by(name))

    def stop_all(self, *, force: bool = False) -> list[str]:
        """Stop every running ETL; return the names that were running (and were stopped).

        Without ``force``, an ETL another holder still uses is left running with a warning.
        """
        stopped = []
        with self.backend.lifecycle():  # also pods no definition names (an init killed with -9)
            names = dict.fromkeys([*self.backend.read_md().names(), *self.backend.running_names()])
            for name in names:
                try:
                    if self._stop(name, force):
                        stopped.append(name)
                except EtlInUseError as exc:
                    log.warning("etl %s left running: %s", name, exc.reason)
        return stopped

    def lease(
        self, name: str | Sequence[str], purpose: str = OFFLINE
    ) -> contextlib.AbstractContextManager[None]:
        """Hold a lease on ``name`` (every ETL of a pipeline) for a block, e.g. an operator's whole job."""
        return hold_chain_leases(self.backend, name, purpose)

    def leases(self, name: str) -> builtins.list[Lease]:
        """Return the leases that count on ``name`` now (who uses it), oldest first."""
        return live_leases(self.backend, name)

    def _blocking(self, name: str) -> builtins.list[Lease]:
        return blocking(live_leases(self.backend, name), this_holder())

    def _stopped_by(self, name: str, why: str = "") -> str:
        """The stop cause running jobs report: ``etl x stopped by <holder>[ why]``."""
        return f"etl {name} stopped by {this_holder().describe()}{why}"

    def delete(self, name: str, *, force: bool = False) -> None:
        """Remove the definition of ``name``; refused while it runs unless ``force`` (which stops it)."""
        with self.backend.lifecycle():
            self.view(name)
            if self._running(name):
                if not force:
                    raise ValidationError(
                        "etl is running: stop it first (ais-etl stop NAME) or delete with force",
                        etl_name=name,
                    )
                self.backend.stop_pods(name, cause=self._stopped_by(name, " to delete it"))
            self.backend.update_md(lambda md: md.delete(name))
            self.backend.forget(name)

    # ------------------------------------------------------------------ inspection
    def view(self, name: str) -> InitMsg:
        """Return the stored init message of ``name``."""
        validate_name(name)
        msg = self.backend.read_md().get(name)
        if msg is None:
            raise EtlNotFoundError(f"etl job {name} does not exist", etl_name=name)
        return msg

    def info(self, name: str) -> EtlInfo:
        """Return the definition summary, state and stats of ``name``."""
        msg = self.view(name)
        endpoints = self.backend.endpoints(name)
        cause = (self.backend.aborted_cause(name) or "") if not endpoints else ""
        targets = len(self.backend.targets()) if endpoints else 0
        return EtlInfo(
            name=name,
            kind=msg.kind,
            comm_type=msg.comm_type,
            arg_type=msg.arg_type,
            runtime=getattr(msg, "runtime", ""),
            state=etl_state(len(endpoints), targets, cause),
            pods=len(endpoints),
            cause=cause,
            stats=self.backend.stats(name),
        )

    def list(self) -> list[EtlInfo]:
        """Return every defined ETL with its state and aggregated stats (all targets)."""
        return [self.info(name) for name in self.backend.read_md().names()]

    def health(self, name: str) -> builtins.list[HealthStatus]:
        self.view(name)
        return self.backend.health(name)

    def metrics(self, name: str) -> builtins.list[PodMetrics]:
        self.view(name)
        return self.backend.metrics(name)

    def logs(self, name: str, target_id: str | None = None) -> builtins.list[PodLogs]:
        self.view(name)
        return self.backend.logs(name, target_id)

    def _running(self, name: str) -> bool:
        return bool(self.backend.endpoints(name))

    # ------------------------------------------------------------------ transforms
    @_leased(INLINE, kept_chain_leases)  # one lease kept across a burst of calls (cluster/inlinelease)
    def transform_object(
        self,
        name: str | Sequence[str],
        src: str,
        obj: str,
        *,
        dst: str | None = None,
        dst_name: str | None = None,
        src_conn_id: str | None = None,
        dst_conn_id: str | None = None,
        timeout: float | None = None,
        etl_args: str = "",
    ) -> bytes | dict[str, Any]:
        """Transform one object inline; return its bytes, or write it to ``dst`` and return a summary.

        ``name`` is one ETL, or a pipeline: ``"etl-1>>etl-2"``, ``"etl-1,etl-2"`` or a list of names
        (first to last). ``etl_args`` reach every transform per request (AIS's query ``etl_args``;
        docs/protocol.md). ``timeout`` applies to each stage (default: each ETL's ``obj_timeout``).
        """
        from airflow_ais_etl.dataplane.inline import transform_object

        for arg, value in (("src", src), ("obj", obj)):
            as_str(arg, value)
        names = parse_pipeline(name)
        msgs = [self.view(n) for n in names]
        if timeout is not None:
            timeout = as_float("timeout", timeout)
        elif len(msgs) == 1:
            timeout = obj_timeout_of(msgs[0])
        for n in names:
            if not self.backend.endpoints(n):
                raise EtlNotFoundError(f"etl job {n} is not running (start it first)", etl_name=n)
        result = asyncio.run(
            transform_object(
                self.backend,
                msgs,
                None,
                src,
                obj,
                dst=dst,
                dst_name=dst_name,
                src_conn_id=src_conn_id,
                dst_conn_id=dst_conn_id,
                timeout=timeout,
                etl_args=etl_args,
            )
        )
        for n in names:
            self.backend.add_stats(n, {"inline_objects": 1, "inline_bytes_in": int(result["bytes_in"])})
        out: bytes | dict[str, Any] = result["data"] if dst is None else result["summary"]
        return out

    @_leased(OFFLINE)
    def transform_bucket(
        self,
        name: str | Sequence[str],
        src: str,
        dst: str,
        options: OfflineOptions | None = None,
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
        control: JobControl | None = None,
        src_conn_id: str | None = None,
        dst_conn_id: str | None = None,
    ) -> dict[str, Any]:
        """Stream every selected object of ``src`` through the ETL into ``dst``; return the stats.

        ``name`` is one ETL, or a pipeline (``"etl-1>>etl-2"``, ``"etl-1,etl-2"`` or a list of names):
        each object passes every ETL in one pass and only the last result is written.
        """
        from airflow_ais_etl.dataplane.engine import OfflineOptions, run_offline

        as_str("src", src)
        as_str("dst", dst)
        if options is not None and not isinstance(options, OfflineOptions):
            raise ValidationError(f"options must be OfflineOptions, got {describe(options)}")
        names = parse_pipeline(name)
        msgs = [self.view(n) for n in names]
        options = options or OfflineOptions()
        with recorded_job(self.backend, names, src, dst, progress, options.progress_interval) as job:
            stats = run_offline(  # every job is in its ETLs' registry (the ETL view lists them)
                self.backend,
                msgs[0] if len(msgs) == 1 else msgs,
                src,
                dst,
                replace(options, progress_interval=job.engine_every),
                progress=job,
                control=control,
                src_conn_id=src_conn_id,
                dst_conn_id=dst_conn_id,
            )
        delta = {f"offline_{k}": int(stats.get(k, 0)) for k in ("objects", "bytes_in", "bytes_out")}
        for n in names:
            self.backend.add_stats(n, delta)
        return stats
