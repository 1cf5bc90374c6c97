"""HTTP/1.1 transport of the emulated API server: keep-alive, chunked streams, clean shutdown."""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tests.k8s_emulator.api import Reply, Request, StreamReply

if TYPE_CHECKING:
    from tests.k8s_emulator.api import Api

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: Api
    closing: threading.Event

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.closing = threading.Event()
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        self.handler_threads: set[threading.Thread] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        me = threading.current_thread()
        with self.conn_lock:
            self.handler_threads.add(me)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.connections.discard(request)
                self.handler_threads.discard(me)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.closing.is_set():
            log.debug("connection from %s ended with an error", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        """Always consume the request body, or the next request on the connection is corrupt."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        req = Request(self.command, url.path, query, self.headers.get("Content-Type", ""), body)
        try:
            reply = self.server.api.handle(req)
        except Exception as exc:  # a bug in the emulator: answer 500 and keep serving
            log.exception("emulator failed on %s %s", self.command, self.path)
            reply = Reply(
                500,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"emulator error: {exc}",
                    "reason": "InternalError",
                    "code": 500,
                },
            )
        if isinstance(reply, StreamReply):
            self._stream(reply)
        else:
            self._send(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _send(self, reply: Reply) -> None:
        if isinstance(reply.body, (bytes, str)):
            data = reply.body.encode() if isinstance(reply.body, str) else reply.body
        else:
            data = json.dumps(reply.body).encode()
        self.send_response(reply.code)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """Tell whether the peer closed the connection (readable with nothing to read)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _stream(self, reply: StreamReply) -> None:
        self.send_response(reply.code)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

        def write(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        def alive() -> bool:
            return not self.server.closing.is_set() and not self._client_gone()

        try:
            reply.produce(write, alive)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class ApiServer:
    """Serve an :class:`Api` on ``127.0.0.1`` at a free port until :meth:`close`."""

    def __init__(self, api: Api, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), api)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="k8s-emulator-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop accepting, end every stream and idle keep-alive connection, and free the port."""
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._server.conn_lock:
            conns = list(self._server.connections)
            threads = list(self._server.handler_threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(5)
        self._thread.join(5)
