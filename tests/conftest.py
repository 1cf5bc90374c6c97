"""Shared pytest configuration: test tiers, the quick tier's spawn guard, a private AIS_ETL_HOME per test.

Tiers. A test that starts a process or a server (a subprocess, the runtime server, a gateway, local
backend pods, the Kubernetes API emulator, ``dag.test()`` on a migrated Airflow DB) is marked
``integration``: by hand, by its module's ``pytestmark``, or here, automatically, when it uses one of
:data:`INTEGRATION_FIXTURES`. ``pytest -m "not integration"`` is the quick tier.

The guard keeps that marking honest: while a test that is *not* marked ``integration`` runs (its
fixtures included), starting a process (``subprocess``, ``os.fork``/``posix_spawn``/``system``,
``multiprocessing``) or listening on a socket raises :class:`SpawnInQuickTier`, and the test fails
at teardown even when the attempt happened on a background thread that swallowed the error.

The Kubernetes API emulator's fixtures (:mod:`tests.k8s_emulator.plugin`) are available everywhere.
"""

from __future__ import annotations

import itertools
import multiprocessing.process
import os
import re
import socket
import subprocess
import threading
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest_plugins = ["tests.k8s_emulator.plugin"]

# Fixtures that start processes or servers: a test that uses one (directly or through another fixture)
# is an integration test.
INTEGRATION_FIXTURES = frozenset(
    {
        # tests/runtime: runtime server processes, an HTTP callback target
        "runtime",
        "callback",
        # tests/io: runtime processes, the in-process target gateway (test_gateway.py: gw)
        "runtimes",
        "gateway",
        "gw",
        # tests/local, tests/offline, tests/airflow: the embedded local backend (gateway and pod processes)
        "home",
        "ais_home",
        # tests/airflow: `airflow db migrate` (a subprocess) for dag.test()
        "airflow_db",
        # the Kubernetes API emulator (an HTTP server; pods run as processes) or a real cluster
        "k8s_emulator",
        "k8s_emulator_shared",
        "k8s_namespace",
        "kube_config_file",
        "kubernetes_conn_env",
        "cluster",
    }
)
# Fixtures that talk to the Kubernetes API (the emulator or a real cluster).
KUBERNETES_FIXTURES = frozenset({"k8s_emulator", "k8s_emulator_shared", "k8s_namespace", "cluster"})


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto`` (pyproject's default): 4 for a run with integration tests, else 2.

    Two cores, but integration tests mostly wait on processes and sockets, so 4 workers pay off; the
    quick tier is CPU-bound and each worker pays ~7 s of collection (imports), so 2 is as fast as any.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides both; ``-n N`` too, and ``-n 0`` runs serially.
    """
    if env := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(env)
    markexpr = config.getoption("markexpr", "") or ""
    return 2 if re.search(r"\bnot\s+integration\b", markexpr) else 4


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by the fixtures they use (before ``-m`` deselects anything)."""
    real_cluster = bool(os.environ.get("KUBECONFIG"))
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)
        if used & KUBERNETES_FIXTURES:
            item.add_marker(pytest.mark.kubernetes)
        if "airflow_db" in used and item.get_closest_marker("xdist_group") is None:
            # dag.test() runs: the first one in a process pays ~4 s for Airflow's in-process execution API
            item.add_marker(pytest.mark.xdist_group("airflow-dag-test"))
        if real_cluster and "cluster" in used:
            # One real cluster namespace (AIS_ETL_K8S_NAMESPACE) for all: one xdist worker runs them in turn.
            item.add_marker(pytest.mark.xdist_group("real-cluster"))


class _XdistGroups:
    """Give grouped tests the ``@group`` nodeid suffix that ``--dist loadgroup`` schedules by.

    pytest-xdist 3.8 writes the suffix to ``item._nodeid``, which pytest 9.2 no longer reads (its node
    ids are structured: pytest-dev/pytest-xdist#1386), so ``xdist_group`` marks are silently ignored.
    This does what xdist means to do, after xdist's own hook, and nothing once xdist has done it.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not getattr(config.option, "loadgroup", False):  # set in the xdist workers of a loadgroup run
            return
        for item in items:
            marks = item.iter_markers("xdist_group")
            groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
            node_id = getattr(item, "_id", None)
            if not groups or node_id is None or "@" in item.nodeid.rpartition("]")[2]:
                continue
            item._id = type(node_id).parse(f"{item.nodeid}@{'_'.join(groups)}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_XdistGroups(), "ais-etl-xdist-groups")


# -- the quick tier's guard ------------------------------------------------------------------------


class SpawnInQuickTier(RuntimeError):
    """A test that is not marked ``integration`` tried to start a process or a server."""


def _guarded(what: str, attempts: list[str], original: Any) -> Any:
    def guard(*args: Any, **kwargs: Any) -> Any:
        message = (
            f"{what} in a test that is not marked integration (thread {threading.current_thread().name}): "
            "mark the test @pytest.mark.integration, or use a fixture listed in tests/conftest.py"
        )
        attempts.append(message)
        raise SpawnInQuickTier(message)

    guard.__wrapped__ = original  # type: ignore[attr-defined]
    return guard


_GUARDED: list[tuple[Any, str, str]] = [
    (subprocess.Popen, "_execute_child", "starting a subprocess"),
    (os, "fork", "os.fork()"),
    (os, "forkpty", "os.forkpty()"),
    (os, "posix_spawn", "os.posix_spawn()"),
    (os, "posix_spawnp", "os.posix_spawnp()"),
    (os, "system", "os.system()"),
    (multiprocessing.process.BaseProcess, "start", "starting a multiprocessing process"),
    (socket.socket, "listen", "listening on a socket (a server)"),
]


@pytest.fixture(autouse=True)
def _quick_tier_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Forbid processes and servers in tests that are not marked ``integration``."""
    if request.node.get_closest_marker("integration") is not None:
        yield
        return
    attempts: list[str] = []
    mp = pytest.MonkeyPatch()
    for owner, name, what in _GUARDED:
        if hasattr(owner, name):
            mp.setattr(owner, name, _guarded(what, attempts, getattr(owner, name)))
    try:
        yield
    finally:
        mp.undo()
    already_failed = any(r.failed for r in request.node.stash.get(_REPORTS, {}).values())
    if attempts and not already_failed:  # e.g. a background thread swallowed the error
        pytest.fail(f"{request.node.nodeid}: {attempts[0]}", pytrace=False)


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep the setup and call reports on the item (the guard reports only attempts not already failing)."""
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


# -- a private AIS_ETL_HOME per test ---------------------------------------------------------------

_home_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _private_ais_etl_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``AIS_ETL_HOME`` at a directory of this test alone (not created; fixtures may override it).

    The default home is per user; two tests (or xdist workers) sharing it would share one local cluster.
    """
    base = tmp_path_factory.getbasetemp() / "ais-etl-homes"
    monkeypatch.setenv("AIS_ETL_HOME", str(base / f"home-{next(_home_numbers)}"))
