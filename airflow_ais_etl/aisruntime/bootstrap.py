"""The pod's program: check everything, then hand over to the server (AIS's image's bootstrap, re-done).

Order, as in the image: system packages, Python packages, unpickle the class, instantiate it, serve.
Every failure is one ``ERROR:`` line on stderr and exit code 1, so the init fails with that line in
the pod's log tail instead of a pod that never becomes ready.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from airflow_ais_etl.aisruntime.errors import RuntimeFault
from airflow_ais_etl.aisruntime.launch import (
    APP,
    cpu_count,
    gunicorn_argv,
    num_workers,
    server_kind,
    uvicorn_options,
)
from airflow_ais_etl.aisruntime.packages import install_private, missing_os_packages, split_list, unsatisfied
from airflow_ais_etl.aisruntime.payload import load_server_class

__all__ = ["PACKAGES_DIR", "main", "prepare_packages", "serve"]

PACKAGES_DIR = "aisruntime-packages"
"""The pod's private directory (under its working directory) for ``PACKAGES`` it lacks."""

log = logging.getLogger("aisruntime")


def prepare_packages(env: dict[str, str], workdir: Path) -> str | None:
    """Make ``PACKAGES`` importable and check ``OS_PACKAGES``; return the directory to put on the path.

    :raises RuntimeFault: a system package is missing, or installing a Python package failed
    """
    os_missing = missing_os_packages(split_list(env.get("OS_PACKAGES", ""), "OS_PACKAGES"))
    if os_missing:
        raise RuntimeFault(
            f"OS_PACKAGES {', '.join(os_missing)} are not installed on this machine, and a local pod does "
            "not install system packages (that needs root on a machine other users share): install them "
            "with the system's package manager (e.g. sudo apt-get install " + " ".join(os_missing) + "), "
            "then init the ETL again"
        )
    needed = unsatisfied(split_list(env.get("PACKAGES", "")))
    if not needed:
        return None
    target = workdir / PACKAGES_DIR
    install_private(needed, target)
    return str(target)


def _use_path(directory: str) -> None:
    """Put ``directory`` on this process's import path and on its workers' (``PYTHONPATH``)."""
    sys.path.insert(0, directory)
    current = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (current, directory) if p)


def main(argv: list[str] | None = None) -> int:
    """Serve the ETL class of ``ETL_CLASS_PAYLOAD``; return 1 (after one ERROR line) when it cannot."""
    parser = argparse.ArgumentParser(prog="python -m airflow_ais_etl.aisruntime", description=__doc__)
    parser.add_argument("--image-python", default="", help="the Python X.Y the image tag asked for")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    try:
        directory = prepare_packages(dict(os.environ), Path.cwd())
        if directory:
            _use_path(directory)
        cls = load_server_class(os.environ.get("ETL_CLASS_PAYLOAD", ""), args.image_python)
        try:
            server = cls()
        except Exception as exc:
            raise RuntimeFault(f"{cls.__name__}() failed: {type(exc).__name__}: {exc}") from None
        kind = server_kind(server)
        workers = num_workers(os.environ.get("NUM_WORKERS"), cpu_count())
    except RuntimeFault as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    serve(server, kind, workers)
    return 0


def serve(server: Any, kind: str, workers: int) -> None:
    """Serve ``server`` until stopped (uvicorn, HTTP: in this process; gunicorn: exec'd in its place)."""
    name = type(server).__name__
    if kind == "http":
        log.info("serving %s in-process (HTTPMultiThreadedServer)", name)
        server.start()
    elif kind == "fastapi":
        import uvicorn

        log.info("serving %s with uvicorn, %d worker(s)", name, workers)
        uvicorn.run(APP if workers > 1 else server.app, **uvicorn_options(workers))
    else:
        argv = gunicorn_argv(workers)
        log.info("serving %s: %s", name, " ".join(argv))
        sys.stdout.flush()
        os.execv(argv[0], argv)
