"""A transformer pod built on AIStore's own servers (``aistore[etl]``), as AIS users write them.

Run as ``python aisserver.py {fastapi|flask|http}``; it binds ``$POD_IP:$PORT`` (the local
backend gives every pod its own loopback address). The transform reverses the object and, when
the request carries ``etl_args``, appends ``|<args>|<path>`` so tests see both arrive.
"""

from __future__ import annotations

import os
import sys


def reverse_with_args(data: bytes, path: str, etl_args: str) -> bytes:
    out = bytes(data)[::-1]
    return out + f"|{etl_args}|{path}".encode() if etl_args else out


def main(kind: str) -> None:
    if kind == "fastapi":
        from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer as Base
    elif kind == "flask":
        from aistore.sdk.etl.webserver.flask_server import FlaskServer as Base
    else:
        from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer as Base

    class Reverse(Base):  # type: ignore[misc,valid-type]
        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            return reverse_with_args(data, path, etl_args)

    Reverse(host=os.environ["POD_IP"], port=int(os.environ["PORT"])).start()


if __name__ == "__main__":
    main(sys.argv[1])
