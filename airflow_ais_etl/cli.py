"""``ais-etl``: the command line twin of AIStore's ``ais etl`` commands, on the local backend."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ais_etl import cli_compat as compat
from airflow_ais_etl.cli_podoptions import pod_options_from_flags
from airflow_ais_etl.etl.errors import AisEtlError, ValidationError
from airflow_ais_etl.etl.leases import EtlInUseError
from airflow_ais_etl.interrupts import Interrupted, exit_code, run_interruptible, signals_raise

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
    """``NAME=VALUE``, or ``NAME`` alone for this process's value (a secret then stays out of ``ps``)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not key:
            raise ValidationError(
                f"invalid --env {pair!r}: use NAME=VALUE, or NAME to pass this shell's $NAME"
            )
        if not sep:
            if key not in os.environ:
                raise ValidationError(
                    f"--env {key}: ${key} is not set in this shell; export it or use {key}=VALUE"
                )
            value = os.environ[key]
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

    flags = _init_flags(args)
    if args.init_cmd != "code":
        return EtlDefinition.from_mapping({**flags, "spec": _read_text(args.from_file)}, kind="spec")
    if not args.name:
        raise ValidationError("init code needs --name NAME")
    code = {
        "code": _read_text(args.from_file),
        "dependencies": _read_text(args.deps_file) if args.deps_file else None,
        "runtime": args.runtime,
        "transform": args.transform,
        "chunk_size": args.chunk_size,
    }
    return EtlDefinition.from_mapping({**flags, **code}, kind="code")


def _init_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The definition options given on the command line (None: not given, the spec's or the default)."""
    return {
        "comm_type": args.comm_type,
        "arg_type": args.arg_type,
        "timeout": args.wait_timeout,
        "obj_timeout": args.obj_timeout,
        "env": _env_pairs(args.env),
        "pod_options": pod_options_from_flags(args),
        "replace": args.replace,
        "protocol": args.protocol,
        "direct_put": args.direct_put,
    }


def cmd_init(api: AisEtl, args: argparse.Namespace) -> None:
    def show(info: Any) -> None:
        _print(args, info.to_dict(), f"ETL {info.name} is {info.state} on {info.pods} target(s)")

    if args.init_cmd == "code":
        show(api.init(args.name, definition_from_flags(args)))
    else:
        compat.cmd_init_file(api, args, _init_flags(args), show)


def cmd_show(api: AisEtl, args: argparse.Namespace) -> None:
    names = list(args.names or [])
    if names[:1] == ["errors"]:
        raise ValidationError(
            "ais-etl keeps no per-object error log: errors are printed by `bucket` and `object`"
        )
    if names:
        for i, name in enumerate(names[1:] if names[0] == "details" else names):
            if i:
                print("-" * 40)
            args.name = name
            cmd_view(api, args)
        return
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
    if rows and args.no_headers:
        human = "\n".join(human.splitlines()[1:])
    _print(args, [i.to_dict() for i in infos], human)


def cmd_view(api: AisEtl, args: argparse.Namespace) -> None:
    from airflow_ais_etl.etl.masking import mask_msg
    from airflow_ais_etl.etl.msg import to_wire

    msg = mask_msg(api.view(args.name))  # literal env values of a spec are shown as ***
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
    """Stop ETLs; unlike AIS, one that a running job holds is left running (and exit 1) unless --force."""
    if args.all and not args.names and not args.spec_file:
        names = api.stop_all(force=args.force)
        _print(
            args,
            {"stopped": names},
            f"Stopped {len(names)} ETL(s)" + (f": {', '.join(names)}" if names else ""),
        )
        in_use = [n for n in api.backend.read_md().names() if api.leases(n) and api.backend.endpoints(n)]
        if in_use:
            raise EtlInUseError(f"left running, in use: {', '.join(in_use)} (--force stops them anyway)")
        return
    names = compat.names_of(args, api)
    if not names:
        raise ValidationError("give ETL name(s), --all or -f FILE")
    refused: list[EtlInUseError] = []
    for name in compat.existing(api, names):
        try:
            was_running = api.stop(name, force=args.force)
        except EtlInUseError as exc:
            refused.append(exc)
            continue
        human = f"ETL {name} stopped" if was_running else f"ETL {name} was not running"
        _print(args, {"name": name, "was_running": was_running}, human)
    if refused:
        raise EtlInUseError(
            "; ".join(str(exc) for exc in refused) + " (ais-etl stop --force stops it anyway)",
            holders=[h for exc in refused for h in exc.holders],
        )


def cmd_start(api: AisEtl, args: argparse.Namespace) -> None:
    names = compat.names_of(args, api, allow_all=False)
    if not names:
        raise ValidationError("give ETL name(s) or -f FILE")
    for name in names:
        info = api.start(name)
        _print(args, info.to_dict(), f"ETL {info.name} is {info.state} on {info.pods} target(s)")


def cmd_rm(api: AisEtl, args: argparse.Namespace) -> None:
    """Delete ETLs; as in AIS a running one is stopped first (``--force`` is accepted, now implied)."""
    names = compat.names_of(args, api)
    if not names:
        raise ValidationError("give ETL name(s), --all or -f FILE")
    for name in compat.existing(api, names):
        api.delete(name, force=True)
        _print(args, {"deleted": name}, f"ETL {name} deleted")


def cmd_object(api: AisEtl, args: argparse.Namespace) -> None:
    home = compat.env_home(args)
    args.name = compat.pipeline_name(args.name)
    if args.src == "cp":  # AIS: ais etl object ETL cp SRC DST
        if args.rest is None:
            raise ValidationError("usage: ais-etl object ETL cp SRC_BUCKET/OBJECT DST_BUCKET[/OBJECT]")
        args.src, args.dst = args.dst, args.rest
        if args.dst.endswith("/"):
            args.dst += args.src.rstrip("/").rsplit("/", 1)[-1]
    args.src, args.dst = compat.ais_path(home, args.src), compat.ais_path(home, args.dst)
    bucket, obj = _split_object(args.src, args.bucket)
    if args.dst == "-":
        data = api.transform_object(
            args.name, bucket, obj, timeout=args.requests_timeout, etl_args=args.etl_args or ""
        )
        assert isinstance(data, bytes)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    dst_bucket, dst_obj = (
        os.path.split(os.path.abspath(args.dst)) if "://" not in args.dst else args.dst.rsplit("/", 1)
    )
    summary = api.transform_object(
        args.name,
        bucket,
        obj,
        dst=dst_bucket,
        dst_name=dst_obj,
        timeout=args.requests_timeout,
        etl_args=args.etl_args or "",
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

    home = compat.env_home(args)
    args.name = compat.pipeline_name(args.name)
    args.src, args.dst = compat.ais_path(home, args.src), compat.ais_path(home, args.dst)
    args.wait = args.wait or args.timeout is not None
    options = OfflineOptions(
        prefix=args.prefix or "",
        objects=tuple(x for x in args.list.split(",") if x) if args.list else None,
        template=args.template,
        ext=parse_ext(args.ext) if args.ext else None,
        prepend=args.prepend or "",
        dry_run=args.dry_run,
        continue_on_error=args.continue_on_error,
        request_timeout=args.requests_timeout,
        num_workers=args.num_workers or 8,
        skip_existing=args.skip_existing,
        progress_interval=0.5 if args.wait else 30.0,
        etl_args=args.etl_args or "",
        shard=args.shard,
        bytes_in_flight=args.bytes_in_flight,
    )
    options.validate()  # a bad option is refused before the ETL is even looked up
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

    expiry = None
    if args.timeout is not None:  # AIS's bucket --timeout: abort the job when it runs out
        expiry = threading.Timer(args.timeout, control.abort, [f"--timeout {args.timeout:g}s expired"])
        expiry.daemon = True
        expiry.start()
    try:
        signum = run_interruptible(
            run, lambda sig: control.abort(f"interrupted by {signal.Signals(sig).name}")
        )
    finally:
        if expiry is not None:
            expiry.cancel()
    if printer:
        printer.finish(result or None)
    if signum is not None:  # the job's abort error (or, if it did not wind down, the signal) and 130/143
        print(f"Error: {error[0] if error else Interrupted(signum)}", file=sys.stderr)
        raise SystemExit(exit_code(signum))
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

    from airflow_ais_etl.cli_args import add_etl_commands

    handlers = {
        "init": cmd_init,
        "show": cmd_show,
        "logs": cmd_logs,
        "start": cmd_start,
        "stop": cmd_stop,
        "rm": cmd_rm,
        "view": cmd_view,
        "health": cmd_health,
        "metrics": cmd_metrics,
        "object": cmd_object,
        "bucket": cmd_bucket,
    }
    add_etl_commands(sub, handlers)
    from airflow_ais_etl.cli_serve import add_serve_command

    add_serve_command(sub)

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
        with signals_raise():  # SIGTERM too unwinds (pods of an unfinished init are removed)
            api = AisEtl.local(args.home)
            args.func(api, args)
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(f"Error: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return exit_code(signum)
    except AisEtlError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}), file=sys.stderr)
        else:
            print(f"Error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    except BrokenPipeError:  # `ais-etl view-logs NAME | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
