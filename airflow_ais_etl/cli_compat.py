"""``ais etl`` compatibility of ``ais-etl``: AIS's flag spellings, units, multi-name commands, spec files.

AIStore's CLI (``cmd/cli/cli/etl.go``) takes durations with units (``--init-timeout 5m``), sizes
with IEC/SI units (``--chunk-size 32KiB``), several names per ``start``/``stop``/``rm``, spec files
with several documents (``init -f FILE``) and ``ais://BUCKET`` names. This module holds those
parsers and the handlers of AIS's spellings, so ``cli.py`` only wires them into its parser.
``ais://NAME`` on the local backend is the directory ``<home>/buckets/NAME``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.duration import parse_duration
from airflow_ais_etl.etl.errors import AisEtlError, ValidationError

if TYPE_CHECKING:
    from airflow_ais_etl.service import AisEtl

__all__ = [
    "ais_path",
    "cmd_init_file",
    "names_of",
    "parse_seconds",
    "parse_size",
    "pipeline_name",
]

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_SI = {
    "": 1,
    "B": 1,
    "K": 10**3,
    "KB": 10**3,
    "M": 10**6,
    "MB": 10**6,
    "G": 10**9,
    "GB": 10**9,
    "T": 10**12,
    "TB": 10**12,
}
_IEC = {
    "KI": 1 << 10,
    "KIB": 1 << 10,
    "MI": 1 << 20,
    "MIB": 1 << 20,
    "GI": 1 << 30,
    "GIB": 1 << 30,
    "TI": 1 << 40,
    "TIB": 1 << 40,
}


def parse_size(text: str) -> int:
    """Parse a size as AIS does: raw bytes, SI (``128k``, ``4mb`` = 4,000,000) or IEC (``32KiB``, ``1MiB``).

    :raises argparse.ArgumentTypeError: anything else (argparse turns it into a usage error)
    """
    m = _SIZE.fullmatch(str(text))
    unit = m.group(2).upper() if m else ""
    factor = _IEC.get(unit) or _SI.get(unit)
    if m is None or factor is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes (65536), IEC units (32KiB, 1MiB) or SI units (64KB, 4MB)"
        )
    return int(float(m.group(1)) * factor)


def parse_seconds(text: str) -> float:
    """Parse a duration with units (``45s``, ``5m``, ``1h30m``) or bare seconds (``30``, ``2.5``)."""
    value = str(text).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parse_duration(value)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: expecting e.g. 30s, 5m or seconds")
    return seconds


def ais_path(home: str | None, url: str) -> str:
    """Map ``ais://NAME[/OBJ]`` to the local cluster's bucket directory; anything else is returned as is."""
    if not url.startswith("ais://"):
        return url
    from airflow_ais_etl.cluster.local.state import default_home

    rest = url[len("ais://") :]
    bucket, _, obj = rest.partition("/")
    if not bucket or "/" in bucket or bucket in (".", ".."):
        raise ValidationError(f"invalid bucket {url!r}: expecting ais://BUCKET or ais://BUCKET/OBJECT")
    base = Path(home) if home else default_home()
    directory = base / "buckets" / bucket
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(directory / obj) if obj else str(directory)


def pipeline_name(name: str) -> str:
    """Return the ETL name, or a pipeline in AIS's spelling (``etl-1>>etl-2``; ``etl-1,etl-2`` too).

    The chain is checked here (empty stage, a name twice, too many ETLs), so a bad one fails before
    any source is read; the ETLs themselves are checked when the job starts.
    """
    from airflow_ais_etl.etl.pipeline import parse_pipeline, pipeline_label

    return pipeline_label(parse_pipeline(name))


def names_of(args: argparse.Namespace, api: AisEtl, *, allow_all: bool = True) -> list[str]:
    """Return the ETL names a ``start``/``stop``/``rm`` invocation means: names, ``--all`` or ``-f FILE``."""
    names = list(getattr(args, "names", None) or [])
    spec_file = getattr(args, "spec_file", None)
    if spec_file:
        if names:
            raise ValidationError(f"--spec/-f cannot be used together with ETL names {names}")
        from airflow_ais_etl.etl.aisspec import load_spec_documents

        docs = load_spec_documents(_read(spec_file))
        missing = [i for i, d in enumerate(docs, 1) if not d.name]
        if missing:
            raise ValidationError(f"document(s) {missing} of {spec_file} name no ETL (add name:)")
        return [d.name for d in docs]
    if allow_all and getattr(args, "all", False):
        if names:
            raise ValidationError(f"--all cannot be used together with ETL names {names}")
        return [i.name for i in api.list()]
    return names


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    if path.startswith(("http://", "https://")):
        import urllib.request

        with urllib.request.urlopen(path, timeout=30) as resp:
            return str(resp.read().decode("utf-8"))
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None


_OVERRIDES = (
    ("name", "--name"),
    ("comm_type", "--comm-type"),
    ("wait_timeout", "--init-timeout"),
    ("obj_timeout", "--object-timeout"),
)


def cmd_init_file(api: AisEtl, args: argparse.Namespace, flags: dict[str, Any], show: Any) -> None:
    """Init every ETL of a spec file (``init -f FILE`` / ``init spec --from-file FILE``).

    As AIS: ``--name`` and the other override flags are refused with several documents; a failing
    document is reported and the others still run; unlike AIS the exit code is then 1.
    """
    from airflow_ais_etl.etl.aisspec import load_spec_documents
    from airflow_ais_etl.etl.definition import EtlDefinition

    positional = getattr(args, "etl_name", None)
    if positional:
        if args.name and args.name != positional:
            raise ValidationError(f"two ETL names: --name {args.name} and {positional}; give one")
        args.name = positional
    if not args.from_file:
        raise ValidationError("give the spec file: ais-etl init -f FILE (or --spec/--from-file FILE)")
    docs = load_spec_documents(_read(args.from_file))
    if len(docs) > 1:
        used = [flag for dest, flag in _OVERRIDES if getattr(args, dest, None) is not None]
        if used:
            raise ValidationError(
                f"cannot use override flags {used} with a multi-ETL file; remove these flags or split the file"
            )
    failed = 0
    for doc in docs:
        name = args.name or doc.name
        try:
            if not name:
                raise ValidationError(
                    "the spec names no ETL: add name: (runtime spec) or metadata.name (Pod), or pass --name"
                )
            given = {k: v for k, v in flags.items() if v is not None}
            mapping = {**doc.options, **given, "spec": doc.text}  # given flags override the spec's fields
            info = api.init(name, EtlDefinition.from_mapping(mapping, kind="spec"))
            show(info)
        except AisEtlError as exc:
            if len(docs) == 1:
                raise
            failed += 1
            print(f"Skipping document ({name or '?'}): {exc}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


def env_home(args: argparse.Namespace) -> str | None:
    """Return the local cluster home the command runs against (``--home`` or ``$AIS_ETL_HOME``)."""
    home: str | None = args.home or os.environ.get("AIS_ETL_HOME")
    return home


def existing(api: AisEtl, names: list[str]) -> list[str]:
    """Return the names that exist; warn on stderr about the others (AIS: "not found, nothing to do")."""
    known = set(api.backend.read_md().names())
    out = []
    for name in names:
        if name not in known and not api.backend.endpoints(name):
            print(f"Warning: ETL[{name}] not found, nothing to do", file=sys.stderr)
            continue
        out.append(name)
    return out
