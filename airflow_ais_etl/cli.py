"""``ais-etl``: the command line twin of AIStore's ``ais etl`` commands, on the local backend."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cli_podoptions import add_pod_option_flags, pod_options_from_flags
from airflow_ais_etl.etl.constants import HPUSH
from airflow_ais_etl.etl.errors import AisEtlError, ValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.etl.definition import EtlDefinition
    from airflow_ais_etl.service import AisEtl


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None


def _env_pairs(pairs: Sequence[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"invalid --env {pair!r}: use NAME=VALUE")
        out[key] = value
    return out


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif human:
        print(human)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


# ---------------------------------------------------------------------- commands
def definition_from_flags(args: argparse.Namespace) -> EtlDefinition:
    """Build the ETL definition from ``ais-etl init code|spec`` flags (files read, ``-`` is stdin)."""
    from airflow_ais_etl.etl.definition import EtlDefinition

    flags: dict[str, Any] = {
        "comm_type": args.comm_type,
        "arg_type": args.arg_type,
        "timeout": args.wait_timeout,
        "env": _env_pairs(args.env),
        "pod_options": pod_options_from_flags(args),
        "replace": args.replace,
    }
    if args.init_cmd == "spec":
        return EtlDefinition.from_mapping({**flags, "spec": _read_text(args.from_file)}, kind="spec")
    code = {
        "code": _read_text(args.from_file),
        "dependencies": _read_text(args.deps_file) if args.deps_file else None,
        "runtime": args.runtime,
        "transform": args.transform,
        "chunk_size": args.chunk_size,
    }
    return EtlDefinition.from_mapping({**flags, **code}, kind="code")


def cmd_init(api: AisEtl, args: argparse.Namespace) -> None:
    info = api.init(args.name, definition_from_flags(args))
    _print(args, info.to_dict(), f"ETL {info.name} is {info.state} on {info.pods} target(s)")


def cmd_show(api: AisEtl, args: argparse.Namespace) -> None:
    infos = api.list()
    rows = [
        [
            i.name,
            i.kind,
            i.comm_type,
            i.state.value + (f" ({i.cause})" if i.cause else ""),
            str(i.pods),
            str(i.stats.get("offline_objects", 0) + i.stats.get("inline_objects", 0) or "-"),
        ]
        for i in infos
    ]
    human = _table(rows, ["ETL NAME", "KIND", "COMM", "STATE", "PODS", "OBJECTS"]) if rows else "No ETLs."
    _print(args, [i.to_dict() for i in infos], human)


def cmd_view(api: AisEtl, args: argparse.Namespace) -> None:
    from airflow_ais_etl.etl.msg import to_wire

    msg = api.view(args.name)
    wire = to_wire(msg)
    readable = {k: v for k, v in wire.items() if k not in ("code", "dependencies", "spec")}
    for key in ("code", "dependencies", "spec"):
        if hasattr(msg, key):
            readable[key] = getattr(msg, key)
    if args.json:
        _print(args, wire, "")
        return
    lines = [f"{k}: {v}" for k, v in readable.items() if k not in ("code", "dependencies", "spec")]
    for key in ("code", "dependencies", "spec"):
        if readable.get(key):
            lines.append(f"{key}:\n" + "\n".join("  " + ln for ln in str(readable[key]).splitlines()))
    print("\n".join(lines))


def cmd_logs(api: AisEtl, args: argparse.Namespace) -> None:
    logs = api.logs(args.name, args.target)
    human = "\n".join(f"=== {pl.target_id} ({pl.pod_name}) ===\n{pl.logs}" for pl in logs)
    _print(args, [pl.to_dict() for pl in logs], human)


def cmd_health(api: AisEtl, args: argparse.Namespace) -> None:
    hs = api.health(args.name)
    human = _table(
        [[h.target_id, h.pod_name, h.status, h.detail] for h in hs], ["TARGET", "POD", "STATUS", "DETAIL"]
    )
    _print(args, [h.to_dict() for h in hs], human)
    if not all(h.healthy for h in hs):
        raise SystemExit(1)


def cmd_metrics(api: AisEtl, args: argparse.Namespace) -> None:
    ms = api.metrics(args.name)
    rows = [[m.target_id, m.pod_name, f"{m.cpu:.3f}", _human_bytes(m.mem)] for m in ms]
    _print(args, [m.to_dict() for m in ms], _table(rows, ["TARGET", "POD", "CPU (cores)", "MEMORY"]))


def cmd_stop(api: AisEtl, args: argparse.Namespace) -> None:
    if args.all:
        names = api.stop_all()
        _print(
            args,
            {"stopped": names},
            f"Stopped {len(names)} ETL(s)" + (f": {', '.join(names)}" if names else ""),
        )
        return
    if not args.name:
        raise ValidationError("give an ETL name or --all")
    was_running = api.stop(args.name)
    human = f"ETL {args.name} stopped" if was_running else f"ETL {args.name} was not running"
    _print(args, {"name": args.name, "was_running": was_running}, human)


def cmd_start(api: AisEtl, args: argparse.Namespace) -> None:
    info = api.start(args.name)
    _print(args, info.to_dict(), f"ETL {info.name} is {info.state} on {info.pods} target(s)")


def cmd_rm(api: AisEtl, args: argparse.Namespace) -> None:
    api.delete(args.name, force=args.force)
    _print(args, {"deleted": args.name}, f"ETL {args.name} deleted")


def cmd_object(api: AisEtl, args: argparse.Namespace) -> None:
    bucket, obj = _split_object(args.src, args.bucket)
    if args.dst == "-":
        data = api.transform_object(args.name, bucket, obj, timeout=args.requests_timeout)
        assert isinstance(data, bytes)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    dst_bucket, dst_obj = (
        os.path.split(os.path.abspath(args.dst)) if "://" not in args.dst else args.dst.rsplit("/", 1)
    )
    summary = api.transform_object(
        args.name, bucket, obj, dst=dst_bucket, dst_name=dst_obj, timeout=args.requests_timeout
    )
    _print(args, summary, f"wrote {args.dst}")


def _split_object(src: str, bucket: str | None) -> tuple[str, str]:
    """Split ``SRC`` into bucket and object: the parent directory, or relative to ``--bucket``."""
    if bucket:
        b = bucket.rstrip("/")
        if not src.startswith(b + "/"):
            if "://" in src or src.startswith("/"):
                raise ValidationError(f"object {src!r} is not inside bucket {bucket!r}")
            return bucket, src
        return bucket, src[len(b) + 1 :]
    if "://" in src:
        head, _, name = src.rstrip("/").rpartition("/")
        return head, name
    path = os.path.abspath(src)
    return os.path.dirname(path), os.path.basename(path)


def cmd_bucket(api: AisEtl, args: argparse.Namespace) -> None:
    from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
    from airflow_ais_etl.dataplane.progress import ProgressPrinter
    from airflow_ais_etl.etl.naming import parse_ext

    options = OfflineOptions(
        prefix=args.prefix or "",
        objects=tuple(x for x in args.list.split(",") if x) if args.list else None,
        template=args.template,
        ext=parse_ext(args.ext) if args.ext else None,
        prepend=args.prepend or "",
        dry_run=args.dry_run,
        continue_on_error=args.continue_on_error,
        request_timeout=args.requests_timeout,
        num_workers=args.num_workers,
        skip_existing=args.skip_existing,
        progress_interval=0.5 if args.wait else 30.0,
    )
    control = JobControl()
    printer = ProgressPrinter(sys.stderr) if args.wait and not args.json else None
    result: dict[str, Any] = {}
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.update(
                api.transform_bucket(
                    args.name, args.src, args.dst, options, progress=printer, control=control
                )
            )
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=run, name="ais-etl-bucket")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        control.abort("interrupted by the user")
        worker.join()
    if printer:
        printer.finish(result or None)
    if error:
        raise error[0]
    errors = result.get("errors") or []
    human = (
        f"{'dry run: would transform' if options.dry_run else 'transformed'} {result.get('objects', 0)} object(s), "
        f"{_human_bytes(result.get('bytes_in', 0))} in, {_human_bytes(result.get('bytes_out', 0))} out, "
        f"{result.get('skipped', 0)} skipped, {len(errors)} error(s) in {result.get('elapsed', 0):.1f}s"
    )
    for err in errors[:20]:
        human += f"\n  {err['object']}: {err['error']}"
    _print(args, result, human)
    if errors:
        raise SystemExit(1)


def cmd_cluster(api: AisEtl, args: argparse.Namespace) -> None:
    from airflow_ais_etl.cluster.local.backend import LocalBackend

    backend = api.backend
    if not isinstance(backend, LocalBackend):
        raise ValidationError("cluster commands manage the local backend only")
    if args.cluster_cmd == "add-target":
        target = backend.add_target(args.target_id)
        _print(args, {"added": target.id}, f"target {target.id} added")
        return
    if args.cluster_cmd == "remove-target":
        backend.remove_target(args.target_id)
        _print(args, {"removed": args.target_id}, f"target {args.target_id} removed")
        return
    targets = backend.targets()
    data = {
        "home": str(backend.state.home),
        "version": backend.cluster_version(),
        "targets": [{"id": t.id, "node": t.node} for t in targets],
    }
    human = f"home: {data['home']}\nmembership version: {data['version']}\n" + _table(
        [[t.id, t.node] for t in targets], ["TARGET", "NODE"]
    )
    _print(args, data, human)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``ais-etl``."""
    p = argparse.ArgumentParser(
        prog="ais-etl", description="AIStore-style ETL on the embedded local backend."
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument(
        "--home", help="local cluster home (default: $AIS_ETL_HOME or ~/.local/share/airflow-ais-etl)"
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    init = sub.add_parser("init", help="initialise an ETL").add_subparsers(dest="init_cmd", required=True)
    code = init.add_parser("code", help="from Python code defining the transform function")
    code.add_argument("--name", required=True)
    code.add_argument("--from-file", required=True, help="file with the code ('-' for stdin)")
    code.add_argument("--deps-file", help="pip requirements file")
    code.add_argument("--runtime", help="runtime, e.g. python3.11v2 (default: this Python's)")
    code.add_argument("--transform", default="transform", help="name of the transform function")
    code.add_argument(
        "--chunk-size", type=int, default=0, help="stream in chunks of this size (0: whole object)"
    )
    spec = init.add_parser("spec", help="from a Pod spec (YAML or JSON)")
    spec.add_argument("--name", required=True)
    spec.add_argument("--from-file", required=True, help="file with the Pod spec ('-' for stdin)")
    for sp in (code, spec):
        sp.add_argument("--comm-type", default=HPUSH, help="hpush, hpull, hrev or io (default hpush)")
        sp.add_argument("--arg-type", default="", help="'' (bytes), url or fqn")
        sp.add_argument("--wait-timeout", default="45s", help="how long to wait for the pods (e.g. 45s, 5m)")
        sp.add_argument("--env", action="append", metavar="NAME=VALUE", help="extra env for the pods")
        sp.add_argument("--replace", action="store_true", help="replace an existing ETL of that name")
        add_pod_option_flags(sp)
        sp.set_defaults(func=cmd_init)

    sub.add_parser("show", help="list ETLs with state and stats").set_defaults(func=cmd_show)
    for name, fn, helptext in (
        ("view", cmd_view, "show an ETL's init message"),
        ("health", cmd_health, "health of the ETL's pods"),
        ("metrics", cmd_metrics, "CPU and memory of the ETL's pods"),
        ("start", cmd_start, "start a stopped ETL"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("name")
        sp.set_defaults(func=fn)
    logs = sub.add_parser("logs", help="logs of the ETL's pods")
    logs.add_argument("name")
    logs.add_argument("target", nargs="?")
    logs.set_defaults(func=cmd_logs)
    stop = sub.add_parser("stop", help="stop an ETL (or --all); its definition is kept")
    stop.add_argument("name", nargs="?")
    stop.add_argument("--all", action="store_true")
    stop.set_defaults(func=cmd_stop)
    rm = sub.add_parser("rm", help="delete an ETL's definition")
    rm.add_argument("name")
    rm.add_argument("--force", action="store_true", help="stop it first if it is running")
    rm.set_defaults(func=cmd_rm)

    obj = sub.add_parser("object", help="transform one object (inline)")
    obj.add_argument("name")
    obj.add_argument("src", help="the object: a file path or URL (see --bucket for nested names)")
    obj.add_argument("dst", help="destination file or URL, or '-' for stdout")
    obj.add_argument("--bucket", help="bucket of SRC, so that SRC's object name may contain '/'")
    obj.add_argument("--requests-timeout", type=float, default=None, help="seconds")
    obj.set_defaults(func=cmd_object)

    bck = sub.add_parser("bucket", help="transform a bucket (offline) into another")
    bck.add_argument("name")
    bck.add_argument("src")
    bck.add_argument("dst")
    bck.add_argument("--list", help="comma-separated object names")
    bck.add_argument("--template", help="e.g. 'shard-{0000..0999}.tar'")
    bck.add_argument("--prefix", help="select source objects by name prefix")
    bck.add_argument("--ext", help="extension map, e.g. '{jpg:txt}' or JSON")
    bck.add_argument("--prepend", help="prefix added to every destination name")
    bck.add_argument("--dry-run", action="store_true")
    bck.add_argument("--continue-on-error", action="store_true")
    bck.add_argument("--requests-timeout", type=float, default=None, help="per-object timeout, seconds")
    bck.add_argument("--num-workers", type=int, default=8, help="in-flight requests per target")
    bck.add_argument("--skip-existing", action="store_true", help="resume: skip objects already transformed")
    bck.add_argument("--wait", action="store_true", help="show progress until the job ends")
    bck.set_defaults(func=cmd_bucket)

    cluster = sub.add_parser("cluster", help="the local cluster's targets").add_subparsers(
        dest="cluster_cmd", required=True
    )
    cluster.add_parser("show").set_defaults(func=cmd_cluster)
    add = cluster.add_parser("add-target")
    add.add_argument("target_id", nargs="?")
    add.set_defaults(func=cmd_cluster)
    rem = cluster.add_parser("remove-target")
    rem.add_argument("target_id")
    rem.set_defaults(func=cmd_cluster)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ais-etl``; errors go to stderr with exit code 1 (2 for usage errors)."""
    args = build_parser().parse_args(argv)
    from airflow_ais_etl.service import AisEtl

    try:
        api = AisEtl.local(args.home)
        args.func(api, args)
    except AisEtlError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}), file=sys.stderr)
        else:
            print(f"Error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
