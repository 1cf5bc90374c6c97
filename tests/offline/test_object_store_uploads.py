"""The engine uploads results to an object store in threads, several at once, never in its event loop.

An object store answers each upload after a network round trip. The store here is an in-process
fsspec memory file system, attached to Airflow's object storage as ``slowmem://``, whose uploads
take 50 ms each and count how many run at once: uploaded in the engine's event loop they would run
one at a time, and hold up every other object meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import make_tree, reverse
from tests.slowstore import UNTESTED_PROTOCOL, SlowStore
from tests.slowstore import slow_store as _slow_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

REVERSE = "def transform(data):\n    return data[::-1] + b'!'\n"


@pytest.fixture
def slow_store() -> Iterator[tuple[str, Any, SlowStore]]:
    with _slow_store() as store:
        yield store


@pytest.mark.filterwarnings(UNTESTED_PROTOCOL)
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
