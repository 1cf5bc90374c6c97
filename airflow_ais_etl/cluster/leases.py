"""Holding leases on ETLs over any backend: who this process is, taking, renewing and reading leases.

The holder is this process (``user@host``, pid and start time), acting for an Airflow task when an
operator says so with :func:`acting_as`; the same holder names who stopped an ETL. A held lease is
renewed by a daemon thread every ``renew`` seconds until the block ends (then it is dropped); a
holder that dies stops renewing, and its lease expires ``ttl`` seconds later (on the local backend
at once, see :meth:`~airflow_ais_etl.cluster.base.Backend.holder_gone`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import getpass
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.grants import process_start
from airflow_ais_etl.etl.leases import (
    LEASE_TTL,
    RENEW_SECONDS,
    Holder,
    Lease,
    drop_lease,
    leases_of,
    prune,
    put_lease,
)
from airflow_ais_etl.etl.pipeline import parse_pipeline

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_ais_etl.cluster.base import Backend
    from airflow_ais_etl.etl.origin import Origin

__all__ = [
    "acting_as",
    "acting_as_user",
    "hold_chain_leases",
    "hold_lease",
    "is_held",
    "live_leases",
    "this_holder",
]

log = logging.getLogger(__name__)

_acting: contextvars.ContextVar[Holder | None] = contextvars.ContextVar("ais_etl_holder", default=None)
_held: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("ais_etl_held", default=frozenset())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@functools.lru_cache(maxsize=4)
def _process_holder(pid: int) -> Holder:
    """This process as a holder (cached per pid: a forked child is another process)."""
    return Holder(_user(), socket.gethostname(), pid, process_start(pid))


def this_holder() -> Holder:
    """Return who this code runs for: the task set by :func:`acting_as`, else this process's user."""
    acting = _acting.get()
    if acting is not None and acting.pid == os.getpid():
        return acting
    return _process_holder(os.getpid())


@contextlib.contextmanager
def acting_as(origin: Origin | None) -> Iterator[Holder]:
    """Within the block, leases and stops of this thread are the Airflow task ``origin``'s."""
    holder = Holder(_user(), socket.gethostname(), os.getpid(), process_start(os.getpid())).with_origin(
        origin
    )
    token = _acting.set(holder)
    try:
        yield holder
    finally:
        _acting.reset(token)


@contextlib.contextmanager
def acting_as_user(user: str) -> Iterator[Holder]:
    """Within the block, this thread acts for ``user`` (e.g. a login of Airflow's UI), not the process's."""
    pid = os.getpid()
    token = _acting.set(Holder(user, socket.gethostname(), pid, process_start(pid)))
    try:
        yield _acting.get() or this_holder()
    finally:
        _acting.reset(token)


def is_held(name: str) -> bool:
    """Whether this block already holds a lease on ETL ``name`` (:func:`hold_lease` is re-entrant)."""
    return name in _held.get()


def live_leases(backend: Backend, name: str, now: float | None = None) -> list[Lease]:
    """Return the leases on ``name`` that still count (not expired, holder not gone), oldest first."""
    doc = backend.read_leases()
    prune(doc, time.time() if now is None else now, backend.holder_gone)
    return leases_of(doc, name)


@contextlib.contextmanager
def hold_lease(
    backend: Backend, name: str, purpose: str, *, ttl: float = LEASE_TTL, renew: float = RENEW_SECONDS
) -> Iterator[Lease | None]:
    """Hold a lease on ETL ``name`` for the block, renewed in the background; dropped at the end.

    Re-entrant: a block inside one that already holds ``name`` (an operator's lease around the
    service's) adds no second lease and yields None.
    """
    if name in _held.get():
        yield None
        return
    now = time.time()
    lease = Lease(uuid.uuid4().hex, this_holder(), purpose, now, now + ttl)
    backend.update_leases(lambda doc: _put_pruned(doc, backend, name, lease))
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(backend, name, lease, ttl, renew, stop), name=f"lease-{name}", daemon=True
    )
    renewer.start()
    token = _held.set(_held.get() | {name})
    try:
        yield lease
    finally:
        _held.reset(token)
        stop.set()
        renewer.join(timeout=5)
        try:
            backend.update_leases(lambda doc: drop_lease(doc, name, lease.id))
        except Exception as exc:  # the lease expires by itself; the job's own outcome matters more
            log.warning("etl %s: could not drop the lease of %s: %s", name, lease.describe(), exc)


def _put(doc: dict[str, Any], *, name: str, lease: Lease) -> None:
    put_lease(doc, name, lease)


def _put_pruned(doc: dict[str, Any], backend: Backend, name: str, lease: Lease) -> None:
    prune(doc, time.time(), backend.holder_gone)  # writers keep the document free of dead leases
    put_lease(doc, name, lease)


def _renew(
    backend: Backend, name: str, lease: Lease, ttl: float, every: float, stop: threading.Event
) -> None:
    while not stop.wait(every):
        renewed = Lease(lease.id, lease.holder, lease.purpose, lease.acquired, time.time() + ttl)
        try:
            backend.update_leases(functools.partial(_put, name=name, lease=renewed))
        except Exception as exc:  # try again next time; the lease still counts until it expires
            log.warning("etl %s: could not renew the lease of %s: %s", name, lease.describe(), exc)


@contextlib.contextmanager
def hold_chain_leases(backend: Backend, name: str | Sequence[str], purpose: str) -> Iterator[None]:
    """Hold a lease on every ETL of ``name`` (one ETL, or a pipeline ``a>>b``/list) for the block."""
    with contextlib.ExitStack() as stack:
        for etl in parse_pipeline(name):
            stack.enter_context(hold_lease(backend, etl, purpose))
        yield
