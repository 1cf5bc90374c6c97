"""The AIStore SDK's own ``Etl.init_class``, captured: the ETLSpecMsg it sends, for our init paths.

The SDK's ``init_class`` decorator serialises the class (``serialize_class``) and calls
``Etl.init``, which sends the message through ``client.request``. A client that records that one
call gives the exact message AIS would receive, without a server. The ETL classes are built inside
functions so cloudpickle carries them by value, as it does a class defined in a user's notebook.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


class _Recorder:
    """Stands in for ``aistore.Client``: records the request ``Etl.init`` makes."""

    def __init__(self) -> None:
        self.sent: dict[str, Any] | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        assert (method.upper(), path) == ("PUT", "etl"), (method, path)
        self.sent = kwargs["json"]
        return type("Response", (), {"text": "job-id"})()


def init_class_message(name: str, cls: type[Any], **init_class_kwargs: Any) -> dict[str, Any]:
    """Return the ETLSpecMsg the SDK sends for ``@client.etl(name).init_class(**kwargs) class cls``."""
    from aistore.sdk.etl.etl import Etl

    recorder = _Recorder()
    Etl(recorder, name).init_class(**init_class_kwargs)(cls)  # type: ignore[arg-type]
    assert recorder.sent is not None
    return recorder.sent


def reverse_class(kind: str) -> type[Any]:
    """An ETLServer subclass on AIS's ``kind`` server (fastapi, flask, http), defined here by value.

    It reverses the object and, with ``etl_args``, appends ``|<args>|<path>`` (as
    ``tests/ais_servers/aisserver.py``); an object starting with ``FAIL`` makes it raise.
    """
    if kind == "fastapi":
        from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer as Base
    elif kind == "flask":
        from aistore.sdk.etl.webserver.flask_server import FlaskServer as Base
    else:
        from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer as Base

    class Reverse(Base):  # type: ignore[misc,valid-type]
        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            if bytes(data).startswith(b"FAIL"):
                raise ValueError(f"refusing {path}: it starts with FAIL")
            out = bytes(data)[::-1]
            return out + f"|{etl_args}|{path}".encode() if etl_args else out

    return Reverse


def probe_wheel(directory: Path) -> Path:
    """Write the wheel of ``aisclass-probe`` 1.0 (module ``aisclass_probe``: ``mark(b) -> <b>``), no index needed."""
    files = {
        "aisclass_probe/__init__.py": b"def mark(data):\n    return b'<' + bytes(data) + b'>'\n",
        "aisclass_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: aisclass-probe\nVersion: 1.0\n",
        "aisclass_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files["aisclass_probe-1.0.dist-info/RECORD"] = (
        "\n".join([*record, "aisclass_probe-1.0.dist-info/RECORD,,"]) + "\n"
    ).encode()
    wheel = directory / "aisclass_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


def probe_class() -> type[Any]:
    """An HTTP ETLServer whose transform needs ``aisclass_probe`` (a PACKAGES dependency)."""
    from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer

    class Marked(HTTPMultiThreadedServer):  # type: ignore[misc]
        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            import aisclass_probe  # type: ignore[import-not-found]

            out: bytes = aisclass_probe.mark(data)
            return out

    return Marked
