"""AIS-style pods on the local backend: annotations honoured, 0.0.0.0 per pod, io:// modules, bind collisions."""

from __future__ import annotations

import hashlib
import textwrap
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.etl.constants import HPULL
from airflow_ais_etl.etl.errors import PodStartError

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

MT_SERVER = """\
import sys

from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer


class Upper(HTTPMultiThreadedServer):
    def transform(self, data, path, etl_args):
        return data.upper()


if __name__ == "__main__":
    {start}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations:
    communication_type: ${{COMMUNICATION_TYPE:-"\\"hpull://\\""}}
    wait_timeout: 1m
spec:
  containers:
    - name: server
      image: aistorage/transformer_upper:latest
      ports:
        - name: default
          containerPort: {port}
      command: {command}
      readinessProbe:
        httpGet:
          path: /health
          port: default
"""


def _pod(tmp_path: Path, name: str, port: int, start: str, args: str = "", python: str = '"python"') -> str:
    server = tmp_path / f"{name}.py"
    server.write_text(MT_SERVER.format(start=start))
    return POD.format(name=name, port=port, command=f'[{python}, "{server}"{args}]')


def test_hpull_annotation_and_zero_address_per_pod(
    api: AisEtl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each target's pod binds "0.0.0.0" from its command line and serves its own traffic, as hpull."""
    monkeypatch.delenv("COMMUNICATION_TYPE", raising=False)
    start = "Upper(host=sys.argv[1], port=18231).start()"
    info = api.init_spec("mt-upper", _pod(tmp_path, "mt-upper", 18231, start, ', "0.0.0.0"'))
    assert (info.comm_type, info.pods) == (HPULL, 2)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"annotated")
    assert api.transform_object("mt-upper", str(src), "a.txt") == b"ANNOTATED"
    logs = {pl.target_id: pl.logs for pl in api.logs("mt-upper")}
    ips = {tid: api.backend._pods("mt-upper")[tid].ip for tid in logs}  # type: ignore[attr-defined]
    assert len(set(ips.values())) == 2
    stats = api.transform_bucket("mt-upper", str(src), str(tmp_path / "dst"))
    assert stats["objects"] == 1
    api.stop("mt-upper")


def test_a_python_server_binding_all_addresses_in_code_gets_its_pods_address(
    api: AisEtl, tmp_path: Path
) -> None:
    """AIS's multi-threaded server binds 0.0.0.0 in code; each local pod's binds its own address."""
    api.init_spec("mt-code", _pod(tmp_path, "mt-code", 18233, "Upper(port=18233).start()"))
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"o{i}").write_bytes(f"object {i}".encode())
    stats = api.transform_bucket("mt-code", str(src), str(tmp_path / "dst"))
    assert stats["objects"] == 8
    assert {p.name: p.read_bytes() for p in (tmp_path / "dst").iterdir() if p.is_file()} == {
        f"o{i}": f"OBJECT {i}".encode() for i in range(8)
    }
    pods = api.backend._pods("mt-code")  # type: ignore[attr-defined]
    assert len({pod.ip for pod in pods.values()}) == 2
    assert all(h.healthy for h in api.health("mt-code"))
    api.stop("mt-code")


def test_a_server_binding_all_addresses_fails_readiness_naming_the_fix(api: AisEtl, tmp_path: Path) -> None:
    """Outside our reach (python -I ignores PYTHONPATH), a 0.0.0.0 bind must not pass as the next pod's."""
    spec = _pod(tmp_path, "mt-wild", 18232, "Upper(port=18232).start()", python='"python", "-I"')
    with pytest.raises(PodStartError) as err:
        api.init_spec("mt-wild", spec)
    text = str(err.value)
    assert "18232" in text
    assert ("not by this pod's own processes" in text) or ("could not bind its port" in text), text
    assert "POD_IP" in text
    assert api.backend._pods("mt-wild") == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "expect"),
    [
        (
            "import sys\n\ndef transform():\n    sys.stdout.buffer.write(sys.stdin.buffer.read().upper())\n",
            lambda d: d.upper(),
        ),
        (  # AIS's documented io example shape: the module calls transform() itself under the guard
            textwrap.dedent(
                """\
                import hashlib
                import sys

                def transform():
                    md5 = hashlib.md5(sys.stdin.buffer.read())
                    sys.stdout.buffer.write(md5.hexdigest().encode())

                if __name__ == "__main__":
                    transform()
                """
            ),
            lambda d: hashlib.md5(d).hexdigest().encode(),
        ),
        ("def transform(data):\n    return data[::-1]\n", lambda d: d[::-1]),
    ],
    ids=["defines-only", "main-guard", "data-to-bytes"],
)
def test_io_init_code_runs_transform_exactly_once(
    api: AisEtl, tmp_path: Path, code: str, expect: object
) -> None:
    api.init_code("io-code", code, comm_type="io")
    src = tmp_path / "src"
    src.mkdir()
    data = b"io objects are not empty"
    (src / "obj").write_bytes(data)
    assert api.transform_object("io-code", str(src), "obj") == expect(data)  # type: ignore[operator]
    api.stop("io-code")
