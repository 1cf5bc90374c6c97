"""A transformer written to the December 2024 protocol: with arg type fqn, the FQN is the path.

``PUT``/``GET /<escaped FQN>`` (empty body) -> the file's bytes reversed; the query is ignored, as
it was by servers of that time. Binds ``$POD_IP:$PORT``.
"""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _transform(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._answer(200, b"Running")
            return
        try:
            with open(unquote(path[1:]), "rb") as f:
                data = f.read()
        except OSError as exc:
            self._answer(404, f"cannot read {path}: {exc}".encode())
            return
        self._answer(200, data[::-1])

    do_GET = _transform
    do_PUT = _transform


if __name__ == "__main__":
    ThreadingHTTPServer((os.environ["POD_IP"], int(os.environ["PORT"])), Handler).serve_forever()
