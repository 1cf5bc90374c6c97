"""One lease per process and ETL for inline transforms, kept across calls instead of taken per call.

Inline calls are short and come in bursts (a loop over objects, a web server's requests): taking and
dropping a lease per call cost two state writes and a thread each time, a third of a call on the
local backend (``bench/lifecycle_bench.py --inline``). Here the first call takes the lease, the
calls that follow (from any thread, for the same holder) reuse it, and a keeper thread renews it
while calls run and drops it once no call has run for :data:`LINGER_SECONDS`.

What a stop sees is not weakened: a lease names the holder during every call, as before, and for
at most :data:`LINGER_SECONDS` after the last one (a stop then waits or fails naming the holder,
as it would mid-call); a holder that dies stops renewing, so its lease goes as any lease does.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.leases import is_held, this_holder
from airflow_ais_etl.etl.leases import LEASE_TTL, RENEW_SECONDS, Lease, drop_lease, prune, put_lease
from airflow_ais_etl.etl.pipeline import parse_pipeline

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_ais_etl.cluster.base import Backend
    from airflow_ais_etl.etl.leases import Holder

__all__ = ["LINGER_SECONDS", "kept_chain_leases"]

log = logging.getLogger(__name__)

LINGER_SECONDS = 2.0
"""How long a kept lease outlives the last inline call."""
_TICK = 0.25


@dataclass
class _Kept:
    backend: Backend
    name: str
    lease: Lease
    users: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    renewed: float = field(default_factory=time.monotonic)


class _Keeper:
    """The kept leases of this process, and the thread that renews and drops them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every kept lease (a forked child: its parent holds them, and renews them)."""
        self._lock = threading.Lock()
        self._kept: dict[tuple[int, str, Holder], _Kept] = {}
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def use(self, backend: Backend, name: str, purpose: str) -> Iterator[None]:
        holder = this_holder()
        key = (id(backend), name, holder)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                kept.users += 1
        if kept is None:
            kept = self._take(backend, name, purpose, holder, key)
        try:
            yield
        finally:
            with self._lock:
                kept.users -= 1
                kept.idle_since = time.monotonic()

    def _take(self, backend: Backend, name: str, purpose: str, holder: Holder, key: Any) -> _Kept:
        now = time.time()
        lease = Lease(uuid.uuid4().hex, holder, purpose, now, now + LEASE_TTL)

        def put(doc: dict[str, Any]) -> None:
            prune(doc, time.time(), backend.holder_gone)
            put_lease(doc, name, lease)

        backend.update_leases(put)  # before the call runs: a stop from now on sees it
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                kept = self._kept[key] = _Kept(backend, name, lease)
                mine = True
            else:  # another thread took one meanwhile: use that one
                mine = False
            kept.users += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inline-leases", daemon=True)
                self._thread.start()
        if not mine:
            self._drop(backend, name, lease)
        return kept

    def _run(self) -> None:
        while True:
            time.sleep(_TICK)
            now = time.monotonic()
            with self._lock:
                idle = [
                    k for k, v in self._kept.items() if v.users == 0 and now - v.idle_since >= LINGER_SECONDS
                ]
                gone = [self._kept.pop(k) for k in idle]
                due = [v for v in self._kept.values() if now - v.renewed >= RENEW_SECONDS]
                done = not self._kept
                if done:  # nothing kept: the next lease taken starts a new thread
                    self._thread = None
            for kept in gone:
                self._drop(kept.backend, kept.name, kept.lease)
            for kept in due:
                self._renew(kept, now)
            if done:
                return

    def _renew(self, kept: _Kept, now: float) -> None:
        lease = kept.lease
        renewed = Lease(lease.id, lease.holder, lease.purpose, lease.acquired, time.time() + LEASE_TTL)
        try:
            kept.backend.update_leases(lambda doc: put_lease(doc, kept.name, renewed))
            kept.renewed = now
        except Exception as exc:  # next tick tries again; the lease counts until it expires
            log.warning("etl %s: could not renew the lease of %s: %s", kept.name, lease.describe(), exc)

    @staticmethod
    def _drop(backend: Backend, name: str, lease: Lease) -> None:
        try:
            backend.update_leases(lambda doc: drop_lease(doc, name, lease.id))
        except Exception as exc:  # it expires by itself
            log.warning("etl %s: could not drop the lease of %s: %s", name, lease.describe(), exc)

    def drop_all(self) -> None:
        """Drop every kept lease now (at exit: a stop need not wait for them to expire)."""
        with self._lock:
            gone = list(self._kept.values())
            self._kept.clear()
        for kept in gone:
            self._drop(kept.backend, kept.name, kept.lease)


_KEEPER = _Keeper()
atexit.register(_KEEPER.drop_all)
os.register_at_fork(after_in_child=_KEEPER.reset)  # a forked child holds none of its parent's leases


@contextlib.contextmanager
def kept_chain_leases(backend: Backend, name: str | Sequence[str], purpose: str) -> Iterator[None]:
    """Hold a kept lease on every ETL of ``name`` for the block (an outer lease of this block is enough)."""
    with contextlib.ExitStack() as stack:
        for etl in parse_pipeline(name):
            if not is_held(etl):  # e.g. inside ``AisEtl.lease``: that lease covers the call
                stack.enter_context(_KEEPER.use(backend, etl, purpose))
        yield
