"""Decide how to serve an ``ETLServer`` instance, as AIS's runtime image does: which server, how many workers.

FastAPI classes run under uvicorn, Flask classes under gunicorn, each with ``NUM_WORKERS`` worker
processes importing :mod:`~airflow_ais_etl.aisruntime.app` (one uvicorn worker serves the
instance already made, in-process: no second start-up); an ``HTTPMultiThreadedServer`` serves
in-process (it is threaded). The address is the image's, ``0.0.0.0:8000``: inside a pod that is
the pod's own address (a local pod binds it as its loopback address).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from airflow_ais_etl.aisruntime.errors import AIS_EXTRA_HINT, RuntimeFault

__all__ = [
    "APP",
    "HOST",
    "PORT",
    "cpu_count",
    "gunicorn_argv",
    "num_workers",
    "server_kind",
    "uvicorn_options",
]

APP = "airflow_ais_etl.aisruntime.app:app"
"""What the worker processes import: the unpickled server's ASGI/WSGI app."""
HOST = "0.0.0.0"
PORT = 8000
"""AIS's ``DefaultContainerPort``: the port an ETLSpecMsg pod declares and probes."""
DEFAULT_WORKERS = 4
"""The SDK's documented default of ``NUM_WORKERS``; capped by this machine's CPUs."""
_WS_MAX_SIZE = 16 << 30
"""Largest WebSocket message uvicorn accepts (the image's 16 GiB: objects travel in one message)."""


def num_workers(value: str | None, cpus: int | None) -> int:
    """Return the worker count: ``NUM_WORKERS`` when set (at most the CPUs), else min(4, CPUs).

    Local pods share one machine, one pod per target: more workers than CPUs would only cost memory.

    :raises RuntimeFault: ``NUM_WORKERS`` is not a positive integer
    """
    limit = max(1, cpus or 1)
    if value is None or not value.strip():
        return min(DEFAULT_WORKERS, limit)
    try:
        wanted = int(value.strip())
    except ValueError:
        wanted = 0
    if wanted < 1:
        raise RuntimeFault(
            f"NUM_WORKERS must be a positive integer, got {value!r}: pass e.g. NUM_WORKERS='2'"
        )
    return min(wanted, limit)


def _server_classes() -> dict[str, type[Any]]:
    try:
        from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer
        from aistore.sdk.etl.webserver.flask_server import FlaskServer
        from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer
    except ImportError as exc:
        raise RuntimeFault(f"{AIS_EXTRA_HINT} ({exc})") from None
    return {"fastapi": FastAPIServer, "flask": FlaskServer, "http": HTTPMultiThreadedServer}


def server_kind(server: object) -> str:
    """Return which of AIS's servers ``server`` (an instance of the user's class) extends.

    :raises RuntimeFault: none of the three
    """
    kind = next((k for k, cls in _server_classes().items() if isinstance(server, cls)), None)
    if kind is None:
        raise RuntimeFault(
            f"{type(server).__name__} extends none of AIS's servers: extend FastAPIServer, FlaskServer or "
            "HTTPMultiThreadedServer (aistore.sdk.etl.webserver)"
        )
    return kind


def uvicorn_options(workers: int) -> dict[str, Any]:
    """Return ``uvicorn.run`` keywords: the image's command line (``bootstrap.py``) as arguments."""
    return {
        "host": HOST,
        "port": PORT,
        "workers": workers,
        "log_level": "info",
        "ws_max_size": _WS_MAX_SIZE,
        "ws_ping_interval": 0.0,
        "ws_ping_timeout": 86400.0,
        "access_log": False,
    }


def gunicorn_argv(workers: int) -> list[str]:
    """Return the gunicorn command serving a Flask class with ``workers`` processes."""
    bind = f"{HOST}:{PORT}"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        APP,
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--log-level",
        "info",
    ]


def cpu_count() -> int | None:
    """CPUs this process may run on (its affinity), as the worker cap."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()
