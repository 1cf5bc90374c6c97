"""The flags of ``ais-etl``'s ETL commands: AIS's spellings first, the project's own kept as aliases.

Each ``add_*`` function adds one command (or a flag group) to the parser and says which handler
runs it; the README's CLI table lists the same mapping.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cli_compat import parse_seconds, parse_size
from airflow_ais_etl.cli_podoptions import add_pod_option_flags
from airflow_ais_etl.dataplane.budget import DEFAULT_TARGET_BUDGET

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["add_etl_commands"]


def _init_options(p: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """The options shared by ``init``, ``init spec`` and ``init code`` (None = not given)."""
    default = argparse.SUPPRESS if suppress else None
    p.add_argument("--name", default=default, help="ETL name (default: the spec's name)")
    p.add_argument(
        "--comm-type", default=default, help="hpush, hpull, hrev or io (default: the spec's, else hpush)"
    )
    p.add_argument("--arg-type", default=default, help="'' (bytes), url or fqn")
    p.add_argument(
        "--init-timeout",
        "--timeout",
        "--wait-timeout",
        dest="wait_timeout",
        type=parse_seconds,
        default=default,
        help="how long the pods may take to become ready (e.g. 45s, 5m; default 45s)",
    )
    p.add_argument(
        "--object-timeout",
        "--obj-timeout",
        dest="obj_timeout",
        type=parse_seconds,
        default=default,
        help="how long one object's transform may take (e.g. 30s)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=default,
        metavar="NAME[=VALUE]",
        help="extra env for the pods; NAME alone passes this shell's $NAME (keeps a secret out of ps)",
    )
    p.add_argument(
        "--protocol", default=default, help="transformer protocol: 2025 (default, AIS 2.x) or 2024"
    )
    p.add_argument(
        "--direct-put",
        action="store_const",
        const=True,
        default=default,
        help="pods deliver offline results themselves (support_direct_put)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        default=default if suppress else False,
        help="replace an existing ETL",
    )


def _spec_file(p: argparse.ArgumentParser, *, required: bool = False, suppress: bool = False) -> None:
    p.add_argument(
        "-f",
        "--spec",
        "--from-file",
        dest="from_file",
        required=required,
        default=argparse.SUPPRESS if suppress else None,
        help="spec file (runtime spec or Pod, several '---' documents allowed), URL, or '-' for stdin",
    )


def add_init(sub: Any, handler: Callable[..., None]) -> None:
    """``init -f FILE`` (AIS), ``init spec --from-file FILE`` and ``init code --from-file CODE``."""
    init = sub.add_parser("init", help="initialise ETL(s) from a spec file, or from code")
    _spec_file(init)
    _init_options(init)
    add_pod_option_flags(init)
    init.set_defaults(func=handler, init_cmd=None)
    kinds = init.add_subparsers(dest="init_cmd")
    spec = kinds.add_parser("spec", help="from an ETL runtime spec or a Pod spec (YAML or JSON)")
    spec.add_argument("etl_name", nargs="?", help="ETL name, as --name (older AIS docs put it last)")
    _spec_file(spec, suppress=True)
    _init_options(spec, suppress=True)
    add_pod_option_flags(spec, suppress=True)
    code = kinds.add_parser("code", help="from Python code defining the transform function")
    code.add_argument("--from-file", required=True, help="file with the code ('-' for stdin)")
    code.add_argument("--deps-file", help="pip requirements file")
    code.add_argument("--runtime", help="runtime, e.g. python3.11v2 (default: this Python's)")
    code.add_argument("--transform", default="transform", help="name of the transform function")
    code.add_argument(
        "--chunk-size",
        type=parse_size,
        default=0,
        help="stream in chunks of this size, e.g. 32KiB (0: whole object)",
    )
    _init_options(code, suppress=True)
    add_pod_option_flags(code, suppress=True)


def add_lifecycle(sub: Any, handlers: dict[str, Callable[..., None]]) -> None:
    """``show``, ``view-logs``, ``start``, ``stop``, ``rm`` with AIS's multi-name and file forms."""
    show = sub.add_parser("show", help="list ETLs; with names (or 'details NAME'): their definitions")
    show.add_argument("names", nargs="*")
    show.add_argument("--no-headers", "-H", action="store_true", help="table without header")
    show.set_defaults(func=handlers["show"])
    logs = sub.add_parser("logs", aliases=["view-logs"], help="logs of the ETL's pods")
    logs.add_argument("name")
    logs.add_argument("target", nargs="?")
    logs.set_defaults(func=handlers["logs"])
    for name, helptext in (
        ("start", "start stopped ETL(s)"),
        ("stop", "stop ETL(s), --all or those of -f FILE; definitions are kept"),
        ("rm", "delete ETL(s) (running ones are stopped first), --all or those of -f FILE"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("names", nargs="*")
        p.add_argument("-f", "--spec", dest="spec_file", help="the ETLs named in this spec file")
        if name != "start":
            p.add_argument("--all", action="store_true", help="every ETL")
        if name == "rm":
            p.add_argument(
                "--force", action="store_true", help="accepted for compatibility (rm always stops first)"
            )
        if name == "stop":
            p.add_argument(
                "--force",
                action="store_true",
                help="stop even an ETL that a running job (another DAG run, another user) holds, aborting it",
            )
        p.set_defaults(func=handlers[name])


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` (shard ``I`` of ``N``); the range is checked with the other job options."""
    index, sep, count = str(text).partition("/")
    try:
        if not sep:
            raise ValueError(text)
        return int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid shard {text!r}: use INDEX/COUNT, e.g. 0/4 for the first of four shards"
        ) from None


def add_object(sub: Any, handler: Callable[..., None]) -> None:
    """``object ETL SRC OUT`` and AIS's ``object ETL cp SRC DST``."""
    obj = sub.add_parser("object", help="transform one object (inline)")
    obj.add_argument("name", help="ETL name, or a pipeline: 'etl-1>>etl-2' (or 'etl-1,etl-2')")
    obj.add_argument("src", help="the object: ais://BUCKET/OBJ, a file path or URL (or 'cp')")
    obj.add_argument("dst", help="destination file or URL, or '-' for stdout")
    obj.add_argument("rest", nargs="?", help=argparse.SUPPRESS)
    obj.add_argument("--bucket", help="bucket of SRC, so that SRC's object name may contain '/'")
    obj.add_argument("--args", dest="etl_args", help="per-request argument for the transformer (etl_args)")
    obj.add_argument("--encode-objname", action="store_true", help="accepted for compatibility")
    obj.add_argument(
        "--requests-timeout", "--etl-timeout", type=parse_seconds, default=None, help="e.g. 30s (or seconds)"
    )
    obj.set_defaults(func=handler)


def add_bucket(sub: Any, handler: Callable[..., None]) -> None:
    """``bucket ETL SRC DST`` with AIS's flag names (``--cont-on-err``, ``--etl-timeout``, ``--timeout``)."""
    bck = sub.add_parser("bucket", help="transform a bucket (offline) into another")
    bck.add_argument("name", help="ETL name, or a pipeline: 'etl-1>>etl-2' (or 'etl-1,etl-2')")
    bck.add_argument("src")
    bck.add_argument("dst")
    bck.add_argument("--list", help="comma-separated object names")
    bck.add_argument("--template", help="e.g. 'shard-{0000..0999}.tar'")
    bck.add_argument("--prefix", help="select source objects by name prefix")
    bck.add_argument("--ext", help="extension map, e.g. '{jpg:txt}' or JSON")
    bck.add_argument("--prepend", help="prefix added to every destination name")
    bck.add_argument("--dry-run", action="store_true")
    bck.add_argument("--cont-on-err", "--continue-on-error", dest="continue_on_error", action="store_true")
    bck.add_argument(
        "--etl-timeout",
        "--requests-timeout",
        dest="requests_timeout",
        type=parse_seconds,
        default=None,
        help="per-object timeout, e.g. 30s (or seconds)",
    )
    bck.add_argument(
        "--num-workers", type=int, default=8, help="in-flight requests per target (0: default 8)"
    )
    bck.add_argument("--skip-existing", action="store_true", help="resume: skip objects already transformed")
    bck.add_argument(
        "--shard",
        type=parse_shard,
        default=None,
        help="I/N: transform only hash shard I of N (0 <= I < N), e.g. 0/4 on one worker, 1/4 on the next",
    )
    bck.add_argument(
        "--bytes-in-flight",
        type=parse_size,
        default=DEFAULT_TARGET_BUDGET,
        help="source bytes in flight per target, e.g. 256MiB (default 128MiB): bounds pod memory",
    )
    bck.add_argument("--wait", action="store_true", help="show progress until the job ends")
    bck.add_argument(
        "--timeout",
        type=parse_seconds,
        default=None,
        help="wait at most this long (implies --wait), then abort",
    )
    bck.add_argument(
        "--all", action="store_true", help="accepted for compatibility: local buckets are all present"
    )
    bck.add_argument("--force", "-f", action="store_true", help="accepted for compatibility")
    bck.add_argument("--args", dest="etl_args", help="per-request argument for the transformer (etl_args)")
    bck.set_defaults(func=handler)


def add_etl_commands(sub: Any, handlers: dict[str, Callable[..., None]]) -> None:
    """Add every ETL command; ``handlers`` maps command names to their functions."""
    add_init(sub, handlers["init"])
    add_lifecycle(sub, handlers)
    for name, helptext in (
        ("view", "show an ETL's init message"),
        ("health", "health of the ETL's pods"),
        ("metrics", "CPU and memory of the ETL's pods"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("name")
        sp.set_defaults(func=handlers[name])
    add_object(sub, handlers["object"])
    add_bucket(sub, handlers["bucket"])
