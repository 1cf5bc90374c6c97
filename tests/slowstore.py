"""An object store whose uploads take 50 ms each, like a round trip to a remote one, and count how
many run at once: ``slowmem://``, an fsspec memory file system attached to Airflow's object storage
in this process (the engine's, or an in-process gateway's)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterator

UNTESTED_PROTOCOL = "ignore:UPath 'slowmem' filesystem not explicitly implemented:UserWarning"
"""universal_pathlib warns that it knows no ``slowmem``; its default memory-like path serves it."""


class SlowStore:
    """Counts the uploads in progress; each takes 50 ms, like a round trip to a remote store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.uploads = 0

    def upload(self, path: str, do: Any) -> Any:
        if "/.ais-etl/" in path:  # the job's journal, not a result
            return do()
        with self.lock:
            self.now += 1
            self.uploads += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(0.05)
            return do()
        finally:
            with self.lock:
                self.now -= 1


_counter: list[SlowStore] = [SlowStore()]
"""The counter of the store in use (one class and one file system per process: fsspec and Airflow
cache file systems by protocol, so a second class would not be the one an upload reaches)."""


def _fs() -> Any:
    """Register ``slowmem`` once per process and return its file system."""
    import fsspec
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    cls = fsspec.registry.get("slowmem")
    if cls is None:

        class SlowMemory(MemoryFileSystem):  # type: ignore[misc]
            protocol = "slowmem"
            store: ClassVar[dict[str, Any]] = {}
            pseudo_dirs: ClassVar[list[str]] = [""]

            @classmethod
            def _strip_protocol(cls, path: str) -> str:  # (the parent strips only "memory://")
                return super()._strip_protocol(path.removeprefix("slowmem://"))  # type: ignore[no-any-return]

            def pipe_file(self, path: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
                return _counter[0].upload(
                    path, lambda: super(SlowMemory, self).pipe_file(path, value, *args, **kwargs)
                )

            def put_file(self, lpath: str, rpath: str, *args: Any, **kwargs: Any) -> Any:
                return _counter[0].upload(
                    rpath, lambda: super(SlowMemory, self).put_file(lpath, rpath, *args, **kwargs)
                )

        fsspec.register_implementation("slowmem", SlowMemory)
        attach("slowmem", fs=SlowMemory())
        cls = SlowMemory
    return cls()


@contextlib.contextmanager
def slow_store() -> Iterator[tuple[str, Any, SlowStore]]:
    """A fresh ``slowmem://`` bucket and a fresh counter; yield its URL, the file system and the counter."""
    fs = _fs()
    counter = _counter[0] = SlowStore()
    root = f"/u-{uuid.uuid4().hex[:12]}"
    try:
        yield f"slowmem://{root}", fs, counter
    finally:
        if fs.exists(root):
            fs.rm(root, recursive=True)
