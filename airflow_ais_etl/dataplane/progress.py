"""Human-readable progress of offline jobs: one line for logs, a redrawn bar for terminals."""

from __future__ import annotations

from typing import IO, Any


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


def progress_line(stats: dict[str, Any]) -> str:
    """Return ``done/total objects (pct), bytes, rate, errors, skipped, ETA`` for a stats snapshot."""
    done = stats["objects"] + stats["skipped"] + stats["error_count"]
    total = stats["planned_objects"]
    pct = 100.0 * done / total if total else 100.0
    eta = stats.get("eta")
    eta_text = "-" if eta is None else f"{eta:.0f}s"
    # while the source is still being listed the total only grows: no percentage yet
    of_total = (
        f"{done}/{total}+ objects (listing…)"
        if stats.get("listing")
        else f"{done}/{total} objects ({pct:.1f}%)"
    )
    return (
        f"{of_total}, {_size(stats['bytes_in'])} in, {_size(stats['bytes_out'])} out, "
        f"{stats['rate_objects']:.1f} obj/s, {_size(stats['rate_bytes'])}/s, {stats['error_count']} errors, "
        f"{stats['skipped']} skipped, elapsed {stats['elapsed']:.1f}s, ETA {eta_text}"
    )


class ProgressPrinter:
    """A progress callback that redraws one bar line on a terminal (plain lines otherwise)."""

    def __init__(self, stream: IO[str], width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._drawn = False

    def __call__(self, stats: dict[str, Any]) -> None:
        done = stats["objects"] + stats["skipped"] + stats["error_count"]
        total = stats["planned_objects"] or 1
        filled = int(self.width * min(done / total, 1.0))
        bar = "[" + "#" * filled + "." * (self.width - filled) + "] "
        line = bar + progress_line(stats)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self, stats: dict[str, Any] | None) -> None:
        """End the bar line (the final snapshot was already drawn by the engine)."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
