"""``ais-etl serve``: run AIStore's ETL REST API (the subset the ``aistore`` SDK uses) on this machine.

Same service and backend as the other commands: an ETL the SDK initialises here is one that
``ais-etl show`` lists, and the other way round. Prints ``listening on URL`` once it accepts
connections (port 0 picks a free port, so scripts and tests read the URL from that line).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.interrupts import Interrupted

if TYPE_CHECKING:
    import argparse

    from airflow_ais_etl.serve.remotes import RemoteBucket
    from airflow_ais_etl.service import AisEtl

__all__ = ["add_serve_command", "cmd_serve"]

DEFAULT_LISTEN = "127.0.0.1:51080"


def add_serve_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``ais-etl`` subcommands."""
    p = sub.add_parser(
        "serve",
        help="serve AIStore's ETL REST API for the aistore Python SDK",
        description="Serve the subset of AIStore's REST API that the aistore SDK's ETL, bucket, object "
        "and job calls use (docs/serve.md). Buckets ais://NAME are directories ROOT/NAME; object-store "
        "buckets are served only when configured with --bucket-url or --bucket-map.",
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT (default {DEFAULT_LISTEN}; port 0: any free port)",
    )
    p.add_argument("--buckets", help="directory holding the buckets (default: HOME/buckets)")
    p.add_argument(
        "--bucket-url",
        action="append",
        default=[],
        metavar="PROVIDER/NAME=URL[,conn_id=ID]",
        help="serve object-store URL as the SDK's bucket NAME of PROVIDER (aws, gcp, azure, ...), e.g. "
        "aws/images=s3://my-bucket/images,conn_id=aws_default (repeatable)",
    )
    p.add_argument(
        "--bucket-map",
        metavar="FILE",
        help='JSON file of more such buckets: {"aws/NAME": "s3://..." or {"url": ..., "conn_id": ...}}',
    )
    p.add_argument("--backend", choices=("local", "kubernetes"), default="local")
    p.add_argument("--token-file", help="private file with the bearer token clients must send")
    p.add_argument(
        "--kubernetes-conn-id", help="kubernetes backend: Airflow connection (default: kubeconfig)"
    )
    p.add_argument("--namespace", help="kubernetes backend: namespace of the ETL pods")
    p.set_defaults(func=cmd_serve)


def _api(api: AisEtl, args: argparse.Namespace) -> AisEtl:
    if args.backend == "local":
        return api
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl

    return AisEtl(KubernetesBackend(args.kubernetes_conn_id, args.namespace))


def _buckets_root(api: AisEtl, args: argparse.Namespace) -> str:
    if args.buckets:
        return str(args.buckets)
    home = getattr(getattr(api.backend, "state", None), "home", None)
    if home is None:
        raise ValidationError("give the buckets directory: ais-etl serve --buckets DIR")
    return str(Path(home) / "buckets")


def _remotes(args: argparse.Namespace) -> list[RemoteBucket]:
    from airflow_ais_etl.serve.remotes import load_bucket_map, parse_bucket_url

    remotes = [parse_bucket_url(spec) for spec in args.bucket_url or ()]
    return remotes + (load_bucket_map(args.bucket_map) if args.bucket_map else [])


def cmd_serve(api: AisEtl, args: argparse.Namespace) -> None:
    """Bind, say where, and serve until SIGINT/SIGTERM (running jobs are aborted and waited for)."""
    import uvicorn

    from airflow_ais_etl.serve.app import build_app
    from airflow_ais_etl.serve.auth import check_listen, parse_listen, read_token
    from airflow_ais_etl.serve.buckets import BucketRoot
    from airflow_ais_etl.serve.context import ServeContext

    host, port = parse_listen(args.listen)
    token = read_token(args.token_file) if args.token_file else ""
    check_listen(host, token)
    remotes = _remotes(args)
    api = _api(api, args)
    ctx = ServeContext(api=api, buckets=BucketRoot(_buckets_root(api, args), remotes))
    for problem in ctx.buckets.open_configured():
        print(f"ais-etl serve: warning: configured bucket {problem}", file=sys.stderr, flush=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # accept (queue) connections from the moment the URL is printed
    except OSError as exc:
        sock.close()
        raise ValidationError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(
        build_app(ctx, token),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    print(
        f"ais-etl serve: listening on http://{shown}:{bound} (buckets: {ctx.buckets.root}"
        f"{f' + {len(remotes)} configured' if remotes else ''}, "
        f"backend: {args.backend}{', token required' if token else ''})",
        flush=True,
    )
    with contextlib.suppress(Interrupted):  # uvicorn re-raises the signal it shut down on: a clean stop
        uvicorn.Server(config).run(sockets=[sock])
    print("ais-etl serve: stopped", flush=True)
