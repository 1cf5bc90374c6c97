"""Pure pieces of the runtime: configuration, CPU counting, reader/writer, URL helpers."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime.config import (
    ConfigError,
    available_cpus,
    cgroup_cpu_quota,
    load_config,
    parse_cpu_max,
)
from airflow_ais_etl.runtime.handlers import fqn_from_path
from airflow_ais_etl.runtime.streams import ChunkReader, StreamWriter
from airflow_ais_etl.runtime.upstream import CallbackClient, requote_path, strip_etl_name

if TYPE_CHECKING:
    from pathlib import Path


def test_defaults_match_the_pod_contract() -> None:
    cfg = load_config({"CHUNK_SIZE": "", "ARG_TYPE": "", "FLAGS": "", "COMM_TYPE": ""})
    assert str(cfg.code_file) == "/code/code.py"
    assert (cfg.func_name, cfg.chunk_size, cfg.arg_type, cfg.comm_type) == ("transform", 0, "", "hpush://")
    assert (cfg.host, cfg.port, cfg.grace_seconds) == ("0.0.0.0", 8080, 25.0)
    assert cfg.workers == available_cpus()


def test_overrides() -> None:
    cfg = load_config(
        {
            "AIS_ETL_CODE_DIR": "/tmp/c",
            "MOD_NAME": "mine",
            "FUNC_TRANSFORM": "f",
            "CHUNK_SIZE": "32768",
            "COMM_TYPE": "hpull://",
            "ARG_TYPE": "url",
            "AIS_TARGET_URL": "http://10.0.0.5:51081/v1/etl/_object/AbCdEfGhIj/",
            "POD_IP": "127.1.2.3",
            "AIS_ETL_LISTEN_PORT": "0",
            "AIS_ETL_WORKERS": "3",
            "AIS_ETL_GRACE_SECONDS": "1.5",
        }
    )
    assert str(cfg.code_file) == "/tmp/c/mine.py"
    assert (cfg.func_name, cfg.chunk_size, cfg.arg_type) == ("f", 32768, "url")
    assert cfg.target_url == "http://10.0.0.5:51081/v1/etl/_object/AbCdEfGhIj"
    assert (cfg.host, cfg.port, cfg.workers, cfg.grace_seconds) == ("127.1.2.3", 0, 3, 1.5)
    assert load_config({"POD_IP": "127.1.2.3", "AIS_ETL_LISTEN_HOST": "::1"}).host == "::1"


def test_io_expected_command() -> None:
    cfg = load_config({"COMM_TYPE": "io://", "AIS_ETL_IO_COMMAND": '["python", "/code/code.py"]'})
    assert cfg.expected_io_query == ["bash", "-c", "python /code/code.py"]
    with pytest.raises(ConfigError, match="non-empty JSON list"):
        load_config({"COMM_TYPE": "io://", "AIS_ETL_IO_COMMAND": '"python x"'})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COMM_TYPE": "hrev://"}, "AIS_TARGET_URL must be set"),
        ({"COMM_TYPE": "hpull://", "AIS_TARGET_URL": "ftp://x"}, "not an http"),
        ({"ARG_TYPE": "bytes"}, "ARG_TYPE 'bytes'"),
        ({"COMM_TYPE": "hrev://", "ARG_TYPE": "fqn"}, "cannot be used"),
        ({"COMM_TYPE": "io://", "ARG_TYPE": "fqn"}, "cannot be used"),
        ({"CHUNK_SIZE": "1e3"}, "CHUNK_SIZE"),
        ({"AIS_ETL_WORKERS": "0"}, "AIS_ETL_WORKERS"),
        ({"AIS_ETL_LISTEN_PORT": "70000"}, "AIS_ETL_LISTEN_PORT"),
        ({"AIS_ETL_GRACE_SECONDS": "-1"}, "AIS_ETL_GRACE_SECONDS"),
    ],
)
def test_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_hpull_fqn_needs_no_target_url() -> None:
    assert load_config({"COMM_TYPE": "hpull://", "ARG_TYPE": "fqn"}).target_url == ""


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["max", "100000"], None),
        (["200000", "100000"], 2),
        (["150000", "100000"], 2),
        (["50000", "100000"], 1),
    ],
)
def test_parse_cpu_max(fields: list[str], expected: int | None) -> None:
    assert parse_cpu_max(fields) == expected


def test_cgroup_quota_follows_the_process_cgroup(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/kubepods/pod1/c1\n")
    leaf = tmp_path / "cg" / "kubepods" / "pod1" / "c1"
    leaf.mkdir(parents=True)
    (leaf / "cpu.max").write_text("300000 100000\n")
    (tmp_path / "cg" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path / "cg", proc) == 3
    assert available_cpus(tmp_path / "cg", proc) == min(3, available_cpus(tmp_path / "none", proc))
    assert cgroup_cpu_quota(tmp_path / "none", tmp_path / "none") is None


def _reader(data: bytes, chunk: int, piece: int = 3) -> ChunkReader:
    src = io.BytesIO(data)
    return ChunkReader(lambda n: src.read(min(n, piece)), chunk)  # a source that returns short reads


def test_chunk_reader_iterates_exact_chunks() -> None:
    assert list(_reader(b"abcdefghij", 4)) == [b"abcd", b"efgh", b"ij"]
    assert list(_reader(b"", 4)) == []


def test_chunk_reader_file_methods() -> None:
    reader = _reader(b"0123456789", 4)
    assert reader.read(2) == b"01"
    assert next(reader) == b"2345"
    assert reader.read(-1) == b"6789"
    assert reader.read() == b""
    assert reader.read_all() == b""
    assert _reader(b"xyz", 2).read_all() == b"xyz"


class _Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def send_response(self, status: int, body: bytes | bytearray | memoryview) -> None:
        self.events.append((f"response {status}", bytes(body)))

    def start_chunked(self) -> None:
        self.events.append(("start", b""))

    def send_chunk(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(("chunk", bytes(data)))

    def end_chunked(self) -> None:
        self.events.append(("end", b""))


def test_writer_small_output_gets_content_length() -> None:
    sink = _Sink()
    writer = StreamWriter(sink, threshold=8)
    writer.write(b"abc")
    writer.write(bytearray(b"de"))
    writer.finish()
    assert sink.events == [("response 200", b"abcde")]


def test_writer_streams_past_threshold() -> None:
    sink = _Sink()
    writer = StreamWriter(sink, threshold=4)
    writer.write(b"ab")
    writer.write(b"cdef")
    writer.write(memoryview(b"0123456789"))
    writer.write(b"z")
    writer.finish()
    assert sink.events == [
        ("start", b""),
        ("chunk", b"abcdef"),
        ("chunk", b"0123456789"),
        ("chunk", b"z"),
        ("end", b""),
    ]
    with pytest.raises(TypeError, match="bytes-like"):
        writer.write("text")  # type: ignore[arg-type]


def test_strip_etl_name_keeps_the_rest_verbatim() -> None:
    assert strip_etl_name("etl_name=x&a=1&b=%2F&etl%5Fname=y&c") == "a=1&b=%2F&c"
    assert strip_etl_name("") == ""


def test_requote_path() -> None:
    assert requote_path("/ais%2F@%23%2Fsrc%2Fa%20b") == "/ais%2F@%23%2Fsrc%2Fa%20b"
    assert requote_path("/raw path/\u00e9") == "/raw%20path/%E9"


def test_callback_url_for() -> None:
    client = CallbackClient("http://127.0.0.1:1/v1/etl/_object/AbCdEfGhIj")
    assert client.url_for("/ais%2F@%23%2Fsrc%2Fo", "etl_name=e&x=1") == (
        "http://127.0.0.1:1/v1/etl/_object/AbCdEfGhIj/ais%2F@%23%2Fsrc%2Fo?x=1"
    )


def test_fqn_from_path() -> None:
    assert fqn_from_path("/%2Fmp1%2F@ais%2Fsrc%2F%25ob%2Fa%20b.jpg") == "/mp1/@ais/src/%ob/a b.jpg"
    assert fqn_from_path("/mp1/x") == "/mp1/x"
