"""Issue 16's goals, and the report that prints every measured cell as a ratio next to its goal."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

MiB = 2**20


def goals(fs: str, workload: str) -> list[tuple[str, str, float | None]]:
    """Return ``(what, ratio key, minimum)`` rows for one cell; a ``None`` minimum is informative.

    Ratio keys: ``project/<baseline>`` (speed), ``direct/project`` (direct put + hpull vs hpush), and
    the same with the file transport off (``-http``: the path of Kubernetes and object stores).
    """
    tmpfs = fs == "tmpfs"
    rows: list[tuple[str, str, float | None]] = []
    if workload == "small":
        rows += [
            ("project / serial loop", "project/serial", 0.5 if tmpfs else 1.0),
            ("project / ProcessPool(2)", "project/pool2", 0.3 if tmpfs else None),
        ]
    elif workload == "zlib":
        rows += [("project / ProcessPool(2)", "project/pool2", 0.95)]
    elif workload == "large":
        rows += [("project / ProcessPool(2)", "project/pool2", 0.8)]
    else:
        rows += [("project / ProcessPool(2)", "project/pool2", None)]
    rows += [
        ("project / Dask bag", "project/dask", 1.0),
        ("project / naive HTTP", "project/http", None),
        ("project / serial loop", "project/serial", None) if workload != "small" else ("", "", None),
        ("direct put + hpull / hpush", "direct/project", 1.0),
        ("the same over HTTP (file transport off)", "direct-http/push-http", 1.0),
        ("hpush: file transport / HTTP", "project/push-http", None),
    ]
    return [r for r in rows if r[0]]


def _verdict(value: float, minimum: float | None, *, at_most: bool = False) -> str:
    if minimum is None:
        return "(info)"
    ok = value <= minimum if at_most else value >= minimum
    return f"goal {'<=' if at_most else '>='} {minimum:g}: {'met' if ok else 'NOT MET'}"


def report(results: dict[str, dict[str, Any]], median: Callable[[list[float]], float]) -> None:
    """Print medians, ratios against the same run's baselines, memory and the engine's byte share."""
    for fs, cells in results.items():
        print(f"\n=== {fs} (medians of each contender's rounds)")
        for name, cell in cells.items():
            w, runs = cell["workload"], cell["runs"]
            secs = {c: median([r["seconds"] for r in rs]) for c, rs in runs.items()}
            print(f"\n  {name}: {w.count} x {w.size // 1024} KiB {w.kind}")
            for c, s in secs.items():
                tree = max(r["tree_rss"] for r in runs[c]) / MiB
                print(
                    f"    {c:11} {w.count / s:10.0f} obj/s {w.total_mb / s:9.1f} MB/s   peak tree RSS {tree:8.1f} MiB"
                )
            for what, key, minimum in goals(fs, name):
                a, b = key.split("/")
                if a in secs and b in secs:
                    ratio = secs[b] / secs[a]
                    print(f"    {what:30} {ratio:6.2f}x  {_verdict(ratio, minimum)}")
            _memory(name, runs)


def _memory(name: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Memory of the project's whole tree and engine, and the share of bytes the engine carried."""
    large = name in ("large", "largez")
    for c in ("project", "direct", "push-http", "direct-http"):
        if c not in runs:
            continue
        tree = max(r["tree_rss"] for r in runs[c]) / MiB
        engine = max(r["peak_rss"] for r in runs[c]) / MiB
        print(
            f"    {c:11} engine + pods peak RSS {tree:8.1f} MiB  {_verdict(tree, 512 if large else None, at_most=True)}"
        )
        print(
            f"    {c:11} engine peak RSS        {engine:8.1f} MiB  {_verdict(engine, 128 if large else None, at_most=True)}"
        )
        cpu = statistics.median([r["engine_cpu"] / max(r["objects"], 1) * 1e6 for r in runs[c]])
        last = runs[c][-1]
        via = last["bytes_via_engine"] / max(last["bytes_out"], 1)
        print(
            f"    {c:11} engine CPU {cpu:9.1f} us/object; carried {via:7.2%} of the result bytes; "
            f"{last['file_objects']} of {last['objects']} objects by the file transport"
        )
    for c in ("direct", "direct-http"):
        if c not in runs:
            continue
        r = runs[c][-1]
        share = r["bytes_via_engine"] / max(r["bytes_out"], 1)
        print(
            f"    {c:11} engine carried {share:7.2%} of the result bytes "
            f"({r['direct_put_objects']} of {r['objects']} objects put by the pods)  "
            f"{_verdict(share * 100, 1.0, at_most=True)} (%)"
        )
