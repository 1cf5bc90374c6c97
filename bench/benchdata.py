"""Workloads of the offline benchmark: generated data and the read–transform–write function every
contender runs (the project runs the same transform inside its pods)."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

CHUNK = 1 << 20
"""Large objects stream in 1 MiB chunks (the project's ETL uses ``chunk_size`` = CHUNK)."""
STREAM_FROM = 16 << 20
"""Objects of at least this size are streamed by every contender instead of read whole."""


@dataclass(frozen=True)
class Workload:
    """``count`` objects of ``size`` bytes through ``kind`` (``echo`` or ``zlib``)."""

    name: str
    count: int
    size: int
    kind: str

    @property
    def streamed(self) -> bool:
        return self.size >= STREAM_FROM

    @property
    def total_mb(self) -> float:
        return self.count * self.size / 1e6

    def etl_code(self) -> tuple[str, int]:
        """Return the project's init code and ``chunk_size`` for this workload."""
        if not self.streamed:
            if self.kind == "zlib":
                return "import zlib\n\ndef transform(data):\n    return zlib.compress(data, 6)\n", 0
            return "def transform(data):\n    return data\n", 0
        if self.kind == "zlib":
            code = (
                "import zlib\n\ndef transform(reader, writer):\n    c = zlib.compressobj(6)\n"
                "    for chunk in reader:\n        writer.write(c.compress(chunk))\n    writer.write(c.flush())\n"
            )
            return code, CHUNK
        return (
            "def transform(reader, writer):\n    for chunk in reader:\n        writer.write(chunk)\n",
            CHUNK,
        )


def workloads(quick: bool, fs: str) -> list[Workload]:
    """The issue's cells; ``quick`` shrinks them to seconds; tmpfs keeps 64 MiB objects to 16 (RAM)."""
    big = 4 if quick else (16 if fs == "tmpfs" else 64)
    return [
        Workload("small", 2000 if quick else 20000, 4 << 10, "echo"),
        Workload("zlib", 24 if quick else 200, 4 << 20, "zlib"),
        Workload("large", big, 64 << 20, "echo"),
        Workload("largez", big, 64 << 20, "zlib"),
    ]


def make_data(root: Path, w: Workload) -> None:
    """Write the objects once (kept between runs): random bytes (echo), half text half random (zlib)."""
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(CHUNK)
    text = (b"the quick brown fox jumps over the lazy dog %d " * 4096)[: CHUNK // 2]
    for i in range(w.count):
        path = root / f"obj-{i:06d}.bin"
        if path.exists() and path.stat().st_size == w.size:
            continue
        with open(path, "wb") as f:
            left = w.size
            while left > 0:
                piece = ((text + os.urandom(CHUNK // 2)) if w.kind == "zlib" else block)[:left]
                f.write(piece)
                left -= len(piece)


def atomic_write(path: str, chunks: Any) -> int:
    """Write ``chunks`` to a temp file and rename it into place (as the project does; no fsync)."""
    tmp = f"{os.path.dirname(path)}/.bench-tmp-{os.getpid()}-{os.path.basename(path)}"
    n = 0
    with open(tmp, "wb") as f:
        for c in chunks:
            f.write(c)
            n += len(c)
    os.replace(tmp, path)
    return n


def one_object(job: tuple[str, str, str]) -> int:
    """Read, transform and write one object (every baseline's unit of work); return bytes written."""
    src, dst, kind = job
    with open(src, "rb") as f:
        if os.fstat(f.fileno()).st_size < STREAM_FROM:
            data = f.read()
            return atomic_write(dst, [zlib.compress(data, 6) if kind == "zlib" else data])
        chunks = iter(lambda: f.read(CHUNK), b"")
        return atomic_write(dst, _compressed(chunks) if kind == "zlib" else chunks)


def _compressed(chunks: Any) -> Any:
    comp = zlib.compressobj(6)
    for chunk in chunks:
        yield comp.compress(chunk)
    yield comp.flush()


def jobs(src: Path, dst: Path, kind: str) -> list[tuple[str, str, str]]:
    dst.mkdir(parents=True, exist_ok=True)
    return [(str(src / n), str(dst / n), kind) for n in sorted(os.listdir(src))]


def syncfs_of(directory: str) -> None:
    """Every contender ends with one sync of the destination file system, like the project's journal."""
    from airflow_ais_etl.dataplane.storage.local import syncfs

    syncfs(directory)
