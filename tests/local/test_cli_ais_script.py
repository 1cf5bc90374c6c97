"""A shell script of ``ais etl`` commands from AIStore's docs runs unchanged against ``ais-etl``.

The commands are copied from AIStore's ``docs/cli/etl.md``; the only adaptation is the ``ais``
shell function that hands ``ais etl ...`` to ``ais-etl``. The ETL is an AIS runtime spec
(``etl_spec.yaml``) whose server is AIS's own FastAPI transformer server, binding ``0.0.0.0`` as
AIS's specs do, on the two-target local backend.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

MD5_SERVER = """\
import hashlib

from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer


class Md5Server(FastAPIServer):
    def transform(self, data, path, etl_args):
        return hashlib.md5(data).hexdigest().encode()


fastapi_server = Md5Server()
fastapi_app = fastapi_server.app
"""

SPEC = """\
name: transformer-md5
runtime:
  image: aistorage/transformer_md5:latest
  command: ["uvicorn", "md5_server:fastapi_app", "--app-dir", "{app_dir}", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
communication: ${{COMMUNICATION_TYPE:-"\\"hpush://\\""}}
init_timeout: 2m
"""

# from AIStore's docs/cli/etl.md, in the order a user would run them
SCRIPT = """\
set -eu
ais() { if [ "$1" = etl ]; then shift; ais-etl "$@"; else echo "not an ais etl command: $*" >&2; return 2; fi; }

ais etl init -f spec.yaml
ais etl show
ais etl show transformer-md5
ais etl view-logs transformer-md5
ais etl object transformer-md5 ais://shards/shard-0.tar -
ais etl object transformer-md5 ais://shards/shard-0.tar output.txt
ais etl object transformer-md5 cp ais://src/image.jpg ais://dst/image-md5.txt
ais etl bucket transformer-md5 ais://src_bucket ais://dst_bucket
ais etl bucket transformer-md5 ais://src_bucket ais://dst_bucket --template "shard-{10..12}.tar"
ais etl bucket transformer-md5 ais://src_bucket ais://dst_bucket --ext="{in1:out1,in2:out2}" --prefix="etl-" --wait
ais etl bucket transformer-md5 ais://src_bucket ais://dst_bucket --dry-run --wait
ais etl stop transformer-md5
ais etl start transformer-md5
ais etl stop -f spec.yaml
ais etl rm transformer-md5
ais etl show
"""


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().encode()


def test_ais_etl_docs_script_runs_unchanged(home: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "md5_server.py").write_text(MD5_SERVER)
    (work / "spec.yaml").write_text(SPEC.format(app_dir=work))
    (work / "script.sh").write_text(SCRIPT)
    buckets = home / "buckets"
    objects = {
        "shards/shard-0.tar": b"shard zero",
        "src/image.jpg": b"\xff\xd8 an image",
        "src_bucket/shard-10.tar": b"ten",
        "src_bucket/shard-11.tar": b"eleven",
        "src_bucket/shard-12.tar": b"twelve",
        "src_bucket/etl-a.in1": b"renamed by --ext",
    }
    for name, data in objects.items():
        (buckets / name).parent.mkdir(parents=True, exist_ok=True)
        (buckets / name).write_bytes(data)
    env = {
        **os.environ,
        "AIS_ETL_HOME": str(home),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    env.pop("COMMUNICATION_TYPE", None)
    proc = subprocess.run(
        ["bash", "script.sh"], cwd=work, env=env, capture_output=True, timeout=300, check=False
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, textwrap.shorten(f"stdout: {out}\nstderr: {err}", 4000)
    assert _md5(b"shard zero").decode() in out  # `object ... -` printed the result
    assert "ETL transformer-md5 is running on 2 target(s)" in out
    assert "communication: hpush://" in out  # `show NAME` prints the definition; the placeholder's default
    assert (work / "output.txt").read_bytes() == _md5(b"shard zero")
    assert (buckets / "dst" / "image-md5.txt").read_bytes() == _md5(objects["src/image.jpg"])
    for name in ("shard-10.tar", "shard-11.tar", "shard-12.tar"):
        assert (buckets / "dst_bucket" / name).read_bytes() == _md5(objects[f"src_bucket/{name}"])
    assert (buckets / "dst_bucket" / "etl-a.out1").read_bytes() == _md5(objects["src_bucket/etl-a.in1"])
    assert out.rstrip().endswith("No ETLs.")  # `rm` removed it
