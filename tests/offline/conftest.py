"""Fixtures and helpers for end-to-end offline transforms on the local backend (real processes)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.storage.base import RESERVED_PREFIX, TEMP_PREFIX
from tests.local.conftest import api, home  # noqa: F401  (fixtures reused here)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

AWKWARD = [
    "with space.bin",
    "ünïcödé.bin",
    "per%cent.bin",
    "hash#tag.bin",
    "what?mark.bin",
    "nested/dir/deep name.bin",
    "nested/x/y/z.bin",
]
REVERSE = "def transform(data):\n    return data[::-1] + b'!'\n"
REVERSE_URL = (
    "import urllib.request\n\n"
    "def transform(url):\n"
    "    with urllib.request.urlopen(url) as resp:\n"
    "        return resp.read()[::-1] + b'!'\n"
)
REVERSE_IO = "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read()[::-1] + b'!')\n"
UPPER_CHUNKED = (
    "def transform(reader, writer):\n    for chunk in reader:\n        writer.write(chunk.upper())\n"
)
SLOW = "import time\n\ndef transform(data):\n    time.sleep(0.05)\n    return data.upper()\n"


def reverse(data: bytes) -> bytes:
    return data[::-1] + b"!"


def make_tree(root: Path, count: int, *, big: int = 2, seed: int = 0) -> dict[str, bytes]:
    """Write ``count`` objects of mixed sizes (0 bytes, small, ``big`` over 1 MiB) plus awkward names."""
    out: dict[str, bytes] = {}
    names = [f"obj-{i:04d}.dat" if i % 5 else f"p{i % 3}/obj-{i:04d}.dat" for i in range(count)]
    names += AWKWARD
    for i, name in enumerate(names):
        if i == 0:
            payload = b""
        elif i <= big:
            payload = hashlib.sha256(f"{seed}-{i}".encode()).digest() * ((3 << 20) // 64 + i)
        else:
            payload = f"object {seed} {i} {name} ".encode() * (1 + i % 37)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        out[name] = payload
    return out


def tree_hashes(root: Path) -> dict[str, tuple[str, int]]:
    """Return ``name -> (sha256, mode)`` of every file under ``root`` (all of them, reserved too)."""
    out = {}
    for directory, _dirs, files in os.walk(root):
        for fname in files:
            path = os.path.join(directory, fname)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, root)] = (digest, os.stat(path).st_mode)
    return out


def objects(root: Path) -> dict[str, bytes]:
    """Return the visible objects of a destination directory (no reserved, no temp files)."""
    out = {}
    if not root.exists():
        return out
    for directory, _dirs, files in os.walk(root):
        for fname in files:
            path = os.path.join(directory, fname)
            rel = os.path.relpath(path, root)
            if rel.startswith(RESERVED_PREFIX) or fname.startswith(TEMP_PREFIX):
                continue
            with open(path, "rb") as f:
                out[rel] = f.read()
    return out


def temp_files(root: Path) -> list[str]:
    return [f for _d, _s, files in os.walk(root) for f in files if f.startswith(TEMP_PREFIX)]


def stamps(root: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    """Return ``name -> (inode, mtime_ns)``: a redone object gets a new inode (temp file + rename)."""
    return {n: ((st := os.stat(root / n)).st_ino, st.st_mtime_ns) for n in names}


def when(
    condition: Callable[[], bool], action: Callable[[], object], timeout: float = 60.0
) -> threading.Thread:
    """Run ``action`` from a thread once ``condition`` holds (fault injection mid-run)."""

    def run() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                action()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def count_files(root: Path, minimum: int) -> Callable[[], bool]:
    """Whether ``root`` holds ``minimum`` finished ``.dat`` objects (temp files of objects on their way not counted)."""

    def check() -> bool:
        if not root.exists():
            return False
        return (
            sum(1 for n in os.listdir(root) if n.endswith(".dat") and not n.startswith(TEMP_PREFIX))
            >= minimum
        )

    return check


def mixed_objects(src: Path, prefix: str = "") -> dict[str, bytes]:
    """Write 120 objects of batched and single sizes (0 B to 3 MiB), every 13th starting with ``bad``."""
    data: dict[str, bytes] = {}
    for i in range(120):
        size = (0, 1, 4096, 70_000, 3 << 20)[i % 5] if i % 11 else 4096  # batched and single sizes
        payload = (hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1))[:size]
        data[f"{prefix}o-{i:04d}.bin"] = b"bad" + payload if i % 13 == 7 else payload
    for name, payload in data.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(payload)
    return data


def simple_tree_upper(root: Path, count: int) -> dict[str, bytes]:
    """Write ``count`` small lower-case objects named ``o-NNNN.dat`` (transformed by upper-casing)."""
    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        payload = f"payload {i} ".encode() * (1 + i % 7)
        (root / f"o-{i:04d}.dat").write_bytes(payload)
        out[f"o-{i:04d}.dat"] = payload
    return out
