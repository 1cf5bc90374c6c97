"""The AIStore SDK's own ``Etl.init_class``, captured: the ETLSpecMsg it sends, for our init paths.

The SDK's ``init_class`` decorator serialises the class (``serialize_class``) and calls
``Etl.init``, which sends the message through ``client.request``. A client that records that one
call gives the exact message AIS would receive, without a server. The ETL classes are built inside
functions so cloudpickle carries them by value, as it does a class defined in a user's notebook.
"""

from __future__ import annotations

from typing import Any


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
