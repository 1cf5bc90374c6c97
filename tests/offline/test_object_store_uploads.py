"""The engine uploads results to an object store in threads, several at once, never in its event loop.

An object store answers each upload after a network round trip. The store here is an in-process
fsspec memory file system, attached to Airflow's object storage as ``slowmem://``, whose uploads
take 50 ms each and count how many run at once: uploaded in the engine's event loop they would run
one at a time, and hold up every other object meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import make_tree, reverse

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

REVERSE = "def transform(data):\n    return data[::-1] + b'!'\n"


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


@pytest.fixture
def slow_store() -> Iterator[tuple[str, Any, SlowStore]]:
    import fsspec
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    counter = SlowStore()

    class SlowMemory(MemoryFileSystem):  # type: ignore[misc]
        protocol = "slowmem"
        store: ClassVar[dict[str, Any]] = {}
        pseudo_dirs: ClassVar[list[str]] = [""]

        @classmethod
        def _strip_protocol(cls, path: str) -> str:  # (the parent strips only "memory://")
            return super()._strip_protocol(path.removeprefix("slowmem://"))  # type: ignore[no-any-return]

        def pipe_file(self, path: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
            return counter.upload(
                path, lambda: super(SlowMemory, self).pipe_file(path, value, *args, **kwargs)
            )

        def put_file(self, lpath: str, rpath: str, *args: Any, **kwargs: Any) -> Any:
            return counter.upload(
                rpath, lambda: super(SlowMemory, self).put_file(lpath, rpath, *args, **kwargs)
            )

    fsspec.register_implementation("slowmem", SlowMemory, clobber=True)
    fs = SlowMemory()
    attach("slowmem", fs=fs)
    root = f"/u-{uuid.uuid4().hex[:12]}"
    yield f"slowmem://{root}", fs, counter
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_results_are_uploaded_several_at_once(api: AisEtl, tmp_path: Path, slow_store: Any) -> None:
    url, fs, counter = slow_store
    src = tmp_path / "src"
    data = make_tree(src, 40, big=2)  # batched small objects, and two streamed ones
    api.init_code("upload-etl", REVERSE)
    stats = api.transform_bucket("upload-etl", str(src), url, OfflineOptions(num_workers=8))
    assert stats["state"] == "done", stats["errors"]
    root = url.removeprefix("slowmem://")
    stored = {p.removeprefix(root + "/"): fs.cat_file(p) for p in fs.find(root) if "/.ais-etl" not in p}
    assert stored == {name: reverse(payload) for name, payload in data.items()}
    assert counter.uploads == len(data)
    assert counter.peak >= 2, "uploads ran one at a time"
    api.stop("upload-etl")
