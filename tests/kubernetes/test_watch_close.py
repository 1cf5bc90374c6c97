"""Closing membership watches: a job's end never waits for a watch event or the watch's timeout.

The emulator sends no BOOKMARK events here (its default, like most real API servers), and the
watches ask for a 300 s server-side timeout: a close that waited for the watch's reader would keep
the stream open until an event arrives or the server ends it, and the emulator would record the
server as the one that ended it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.cluster.kubernetes import backend as backend_module
from airflow_ais_etl.cluster.kubernetes.membership import MembershipWatcher
from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.kubernetes.conftest import UPPER, make_bucket

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_ais_etl.cluster.base import MembershipWatch
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

LONG_WATCH = 300
JOIN = 10.0
"""Generous: a thread that waits on the watch would wait up to LONG_WATCH."""


def _all_client_ended(emulator: K8sEmulator, count: int) -> list[str]:
    """Wait until no watch is served any more; return who ended them (``count`` at least)."""
    emulator.wait_for(lambda: emulator.open_watches() == 0 and len(emulator.watch_ends()) >= count)
    return emulator.watch_ends()


def test_close_does_not_wait_for_a_reader_blocked_on_the_socket(
    cluster: Cluster, emulator: K8sEmulator
) -> None:
    backend = cluster.backend()  # not the fixture: this test creates nothing for it to validate
    try:
        _close_a_blocked_watch(backend, emulator)
    finally:
        backend.close()


def _close_a_blocked_watch(backend: KubernetesBackend, emulator: K8sEmulator) -> None:
    _, rv = backend.kube.list_pods("app=nothing-here")
    stream = backend.kube.watch_pods("app=nothing-here", rv, LONG_WATCH)
    events: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: events.extend(stream), daemon=True)
    reader.start()
    emulator.wait_for(lambda: emulator.open_watches() == 1)  # served: the reader waits for a byte
    closer = threading.Thread(target=stream.close, daemon=True)
    closer.start()
    closer.join(JOIN)
    assert not closer.is_alive(), "close() waited for the blocked reader"
    reader.join(JOIN)
    assert not reader.is_alive(), "the reader outlived the close"
    assert events == []
    assert _all_client_ended(emulator, 1) == ["client"]


def test_a_bucket_job_ends_without_waiting_for_its_membership_watch(
    api: AisEtl,
    cluster: Cluster,
    backend: KubernetesBackend,
    emulator: K8sEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backend_module, "_WATCH_SECONDS", LONG_WATCH)
    watchers: list[MembershipWatch] = []
    causes: list[str] = []
    real_watch: Callable[[str, Callable[[str], None]], MembershipWatch] = backend.watch_membership

    def recording(name: str, on_change: Callable[[str], None]) -> MembershipWatch:
        def noted(cause: str) -> None:
            causes.append(cause)
            on_change(cause)

        watchers.append(real_watch(name, noted))
        return watchers[-1]

    monkeypatch.setattr(backend, "watch_membership", recording)
    src, dst = cluster.work / "src", cluster.work / "dst"
    make_bucket(src, [f"obj-{i:03d}.bin" for i in range(20)])
    api.init_code("watch-close-etl", UPPER, comm_type="hpush://")
    stats = api.transform_bucket("watch-close-etl", str(src), str(dst), OfflineOptions(num_workers=4))
    assert (stats["state"], stats["objects"], stats["errors"]) == ("done", 20, [])
    [watcher] = watchers
    assert isinstance(watcher, MembershipWatcher)
    assert watcher.join(JOIN), "a membership watch thread outlived the job"
    # both watches (nodes, pods) were ended by the client leaving, not by an event or their timeout
    assert _all_client_ended(emulator, 2) == ["client", "client"]
    assert causes == []  # closing is not a membership change
    api.stop("watch-close-etl")
