"""Turn one parsed request into one answer: health, hpush/io PUT, hpull/hrev GET.

Failure rules: an error before any byte of the answer went out becomes a status with a text body
(500 for the transform, 502 for the callback, 404 for a missing FQN); after streaming began the
connection is reset without the final chunk. A 200 never carries truncated content.
"""

from __future__ import annotations

import http.client
import os
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from airflow_ais_etl.etl.constants import ARG_BYTES, ARG_FQN, ARG_URL, HDR_DIRECT_PUT_LENGTH, HDR_NODE_URL
from airflow_ais_etl.runtime.access import AccessRefused, Gate, open_granted
from airflow_ais_etl.runtime.aisproto import (
    DirectPutError,
    accepts_context,
    compose_direct_put_url,
    direct_put,
    etl_args_of,
    fqn_of_query,
    node_url_of,
    object_path,
    unquote_path,
)
from airflow_ais_etl.runtime.batch import PULL_BATCH_BUDGET_SECONDS, batch_count, run_batch
from airflow_ais_etl.runtime.fdfiles import FileSink, SinkError, read_whole
from airflow_ais_etl.runtime.filewire import FILE_HEADER, FILE_VERSION
from airflow_ais_etl.runtime.http1.batchwire import (
    ALONE,
    BATCH_HEADER,
    BATCH_VERSION,
    NOT_RUN,
    BatchFormatError,
    decode_items,
    encode_results,
)
from airflow_ais_etl.runtime.httpserver import ClientGone, Connection, HttpError, Request
from airflow_ais_etl.runtime.iocmd import StreamAborted, run_io_command
from airflow_ais_etl.runtime.pullbatch import run_pull_batch
from airflow_ais_etl.runtime.streamput import DirectPutStream
from airflow_ais_etl.runtime.streams import ChunkReader, ReadFn, StreamWriter
from airflow_ais_etl.runtime.targetbatch import TargetBatches
from airflow_ais_etl.runtime.upstream import CallbackClient, CallbackError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from airflow_ais_etl.runtime.config import RuntimeConfig
    from airflow_ais_etl.runtime.usercode import Transform

__all__ = ["App", "StreamAborted"]

BATCH_KEY = BATCH_HEADER.lower()


class _Failure(Exception):
    """An answer other than 200, decided before the response started."""

    def __init__(self, status: int, message: str, *, log_traceback: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.log_traceback = log_traceback


def fqn_from_path(path: str) -> str:
    """Decode the escaped FQN carried in a request path (``/%2Fdisk%2Fobj`` -> ``/disk/obj``)."""
    fqn = unquote(path[1:] if path.startswith("/") else path)
    return fqn if fqn.startswith("/") else "/" + fqn


class App:
    """The request handler shared by every connection thread of a worker."""

    def __init__(
        self, cfg: RuntimeConfig, transform: Transform | None, log: logging.Logger, *, files: bool = False
    ) -> None:
        self.cfg = cfg
        self.transform = transform
        self.log = log
        self.callback = CallbackClient(cfg.target_url) if cfg.target_url else None
        self.target_batches = TargetBatches(cfg.target_url) if cfg.target_url else None
        """Fetches and direct puts of pull batches, many per request when the target takes it."""
        self.gate = Gate.from_env(os.environ)
        base = 2 if cfg.chunk_size else 1
        self.with_context = transform is not None and accepts_context(transform, base)
        """Call ``transform(..., path, etl_args)`` (AIS's convention) rather than ``transform(...)``."""
        self.batches = (
            transform is not None and not cfg.is_io and cfg.chunk_size == 0 and cfg.arg_type == ARG_BYTES
        )
        """Accept many pushed objects in one request (``runtime.http1.batchwire``): whole-object transforms of bytes."""
        self.batches_or_streams = transform is not None and not cfg.is_io and cfg.arg_type == ARG_BYTES
        """The transform takes the object's bytes (whole or streamed): what the file transport can hand it."""
        self.files = files and self.batches_or_streams
        """Objects are also named on the pod's file socket (``runtime.filetransport``)."""
        headers = [(BATCH_HEADER, BATCH_VERSION)] if self.batches else []
        headers += [(FILE_HEADER, FILE_VERSION)] if self.files else []
        self._health_headers = headers or None
        self.batches_proven = False
        """A batch was answered whole within its budget: batches may run in the event loop (runtime.server).

        Until then they run in a connection thread, so an object that hangs on its first try never
        blocks the loop and the other connections it owns."""

    # ------------------------------------------------------------------ dispatch

    def handle(self, conn: Connection, req: Request) -> None:
        """Answer ``req`` on ``conn``; raise :class:`StreamAborted` if the connection was reset."""
        method = req.method
        if req.path == "/health":
            if method == "GET":
                conn.send_response(200, b"Running", headers=self._health_headers)
            else:
                conn.send_text(405, f"method {method} not allowed on /health", [("Allow", "GET")])
            return
        try:
            try:
                self.gate.check(req.headers)
            except AccessRefused as refused:
                conn.close_after = True  # the body stays unread
                raise _Failure(refused.status, refused.message) from None
            if fqn_of_query(req.query) is not None and self.cfg.arg_type != ARG_FQN:
                raise _Failure(400, "query etl_fqn needs ARG_TYPE=fqn: init the ETL with arg type fqn")
            if self.cfg.is_io:
                if method != "PUT":
                    raise _Failure(405, f"method {method} not allowed: io:// accepts PUT")
                self._io(conn, req)
            elif method == "PUT" and self.batches and req.headers.get(BATCH_KEY, ALONE) != ALONE:
                self._batch(conn, req)
            elif method == "PUT":
                self._push(conn, req)
            elif method == "GET" and self.batches and req.headers.get(BATCH_KEY, ALONE) != ALONE:
                self._pull_batch(conn, req)
            elif method == "GET":
                self._pull(conn, req)
            else:
                raise _Failure(405, f"method {method} not allowed")
        except _Failure as fail:
            self._fail(conn, req, fail)

    def _fail(self, conn: Connection, req: Request, fail: _Failure) -> None:
        obj = unquote_path(req.path)
        if fail.log_traceback:
            self.log.error(
                "%s %s -> %d: %s", req.method, obj, fail.status, fail.message, exc_info=fail.__cause__
            )
        else:
            self.log.error("%s %s -> %d: %s", req.method, obj, fail.status, fail.message)
        extra = [("Allow", "PUT" if self.cfg.is_io else "GET, PUT")] if fail.status == 405 else None
        conn.send_text(fail.status, fail.message + "\n", extra)

    # ------------------------------------------------------------------ io://

    def _io(self, conn: Connection, req: Request) -> None:
        commands = parse_qs(req.query, keep_blank_values=True).get("command")
        if not commands:
            raise _Failure(400, "missing command to execute")
        expected = self.cfg.expected_io_query
        if commands != expected:
            raise _Failure(403, f"command {commands!r} is not the ETL's command {expected!r}")
        run_io_command(commands, req.body, conn, self.log, unquote_path(req.path))

    # ------------------------------------------------------------------ hpush

    def _push(self, conn: Connection, req: Request) -> None:
        if self.cfg.arg_type == ARG_FQN:
            req.body.drain()
            self._from_file(conn, req)
            return
        body = req.body
        self._run(conn, req, body.read_all, body.read)

    def _batch(self, conn: Connection, req: Request) -> None:
        """Answer many pushed objects at once, each with its own status (``runtime.http1.batchwire``)."""
        try:
            results = run_batch(self.transform_item, req.headers[BATCH_KEY], req.query, req.body.read_all())
        except BatchFormatError as err:
            raise _Failure(400, f"bad batch request: {err}") from None
        self.batches_proven = all(status != NOT_RUN for status, _ in results)
        conn.send_response(200, b"".join(encode_results(results)))

    def transform_item(
        self, path: str, query: str, data: bytes
    ) -> tuple[int, bytes | bytearray | memoryview]:
        """Transform one object of a batch: ``(200, result)`` or ``(status, error message)``; never raises."""
        try:
            result = self._call_at(path, query, data)
            if not isinstance(result, (bytes, bytearray, memoryview)):
                raise _Failure(
                    500, f"transform for {path!r} returned {type(result).__name__}, expected bytes"
                )
        except _Failure as fail:
            self.log.error(
                "PUT %s (batched) -> %d: %s", path, fail.status, fail.message, exc_info=fail.__cause__
            )
            return fail.status, fail.message.encode("utf-8", "replace")
        return 200, result

    def transform_file(
        self, path: str, query: str, src: int, dst: int, *, size: int | None = None, batched: bool = False
    ) -> tuple[int, int | str]:
        """Transform one object from descriptor ``src`` into ``dst`` (the file transport, ``runtime.filetransport``).

        ``size``: the source's size when the caller knows it (it stat'ed the file when it opened it).

        Return ``(200, result length)``, or the status and message an HTTP request would have got;
        never raise. The caller closes both descriptors.
        """
        sink = FileSink(dst)
        try:
            try:
                if self.cfg.chunk_size == 0:
                    result = self._call_at(path, query, read_whole(src, size))
                    if not isinstance(result, (bytes, bytearray, memoryview)):
                        raise _Failure(
                            500, f"transform for {path!r} returned {type(result).__name__}, expected bytes"
                        )
                    sink.write(result)
                else:
                    writer = StreamWriter(sink)
                    reader = ChunkReader(lambda n: os.read(src, n), self.cfg.chunk_size)
                    self._call_at(path, query, reader, writer)
                    writer.finish()
            except SinkError as err:
                raise _Failure(500, f"cannot write the result of {path!r}: {err.__cause__}") from err
            except OSError as err:  # reading the source
                raise _Failure(500, f"cannot read {path!r}: {err}") from err
        except _Failure as fail:
            how = "fd (batched)" if batched else "fd"
            self.log.error("%s %s -> %d: %s", how, path, fail.status, fail.message, exc_info=fail.__cause__)
            return fail.status, fail.message
        return 200, sink.written

    # ------------------------------------------------------------------ hpull / hrev

    def _pull(self, conn: Connection, req: Request) -> None:
        req.body.drain()
        if self.cfg.arg_type == ARG_FQN:
            self._from_file(conn, req)
            return
        callback = self.callback
        if callback is None:
            raise _Failure(400, "GET needs AIS_TARGET_URL (not set)")
        if self.cfg.arg_type == ARG_URL:
            url = callback.url_for(req.path, req.query)
            self._run_url(conn, req, url)
            return
        try:
            resp = callback.open(req.path, req.query)
        except CallbackError as exc:
            raise _Failure(502, exc.message) from exc
        try:
            self._run(conn, req, lambda: _read_callback(resp, -1), lambda n: _read_callback(resp, n))
        finally:
            callback.release(resp)

    def _pull_batch(self, conn: Connection, req: Request) -> None:
        """Fetch, transform and deliver many objects in one request (``runtime.pullbatch``)."""
        if self.callback is None:
            raise _Failure(400, "GET needs AIS_TARGET_URL (not set)")
        try:
            items = decode_items(req.body.read_all(), batch_count(req.headers[BATCH_KEY]))
        except BatchFormatError as err:
            raise _Failure(400, f"bad batch request: {err}") from None
        steps = _PullSteps(self, self.callback)
        results = run_pull_batch(items, req.query, steps, self.target_batches, PULL_BATCH_BUDGET_SECONDS)
        conn.send_response(200, b"".join(encode_results(results)))

    # ------------------------------------------------------------------ sources

    def _from_file(self, conn: Connection, req: Request) -> None:
        fqn = fqn_of_query(req.query) or fqn_from_path(req.path)
        try:
            f = open_granted(fqn, req.headers, required=self.gate.enabled)
        except AccessRefused as refused:
            raise _Failure(refused.status, refused.message) from None
        except FileNotFoundError as exc:
            raise _Failure(404, f"fqn {fqn!r} not found") from exc
        except OSError as exc:
            raise _Failure(500, f"cannot open fqn {fqn!r}: {exc}") from exc
        with f:
            self._run(conn, req, f.read, f.read)

    # ------------------------------------------------------------------ transform

    def _run(self, conn: Connection, req: Request, read_all: Callable[[], bytes], read: ReadFn) -> None:
        chunk_size = self.cfg.chunk_size
        if chunk_size == 0:
            try:
                data = read_all()
            except CallbackError as exc:
                raise _Failure(502, exc.message) from exc
            result = self._call(req, data)
            self._send_result(conn, req, result)
            return
        reader = ChunkReader(read, chunk_size)
        self._stream(conn, req, lambda writer: self._apply(req, reader, writer))

    def _run_url(self, conn: Connection, req: Request, url: str) -> None:
        if self.cfg.chunk_size == 0:
            result = self._call(req, url)
            self._send_result(conn, req, result)
            return
        self._stream(conn, req, lambda writer: self._apply(req, url, writer))

    def _apply(self, req: Request, *args: object) -> object:
        return self._apply_at(unquote_path(req.path), req.query, *args)

    def _apply_at(self, path: str, query: str, *args: object) -> object:
        """Call the transform with ``args``, plus ``path, etl_args`` when it takes them (AIS's convention).

        ``path`` is the decoded request path (``/<bucket>/<object>``).
        """
        transform = self.transform
        assert transform is not None
        etl_args = etl_args_of(query)
        if self.with_context:
            return transform(*args, path.lstrip("/"), etl_args)
        if etl_args:
            raise _Failure(
                400,
                f"etl_args {etl_args!r} given, but the transform takes no arguments for them: define it as "
                "transform(data, path, etl_args) (streaming: transform(reader, writer, path, etl_args))",
            )
        return transform(*args)

    def _call(self, req: Request, data: object) -> object:
        return self._call_at(unquote_path(req.path), req.query, data)

    def _call_at(self, path: str, query: str, *args: object) -> object:
        try:
            return self._apply_at(path, query, *args)
        except (_Failure, SinkError):
            raise
        except Exception as exc:
            raise _failure_of(path, exc) from exc

    def _send_result(self, conn: Connection, req: Request, result: object) -> None:
        if not isinstance(result, (bytes, bytearray, memoryview)):
            raise _Failure(
                500,
                f"transform for {unquote_path(req.path)!r} returned {type(result).__name__}, expected bytes",
            )
        node_url, rest = node_url_of(req.headers)
        if node_url and self.cfg.target_url:
            self._deliver(conn, req, bytes(result), node_url, rest)
            return
        conn.send_response(200, result)

    def _deliver(self, conn: Connection, req: Request, result: bytes, node_url: str, rest: str) -> None:
        """Direct put: PUT the result to the target named by ``Ais-Node-Url``; answer 204 and its length."""
        assert self.cfg.target_url
        url = compose_direct_put_url(
            node_url, self.cfg.target_url, object_path(req.path), etl_args_of(req.query)
        )
        try:
            length = direct_put(url, result, rest)
        except DirectPutError as exc:
            raise _Failure(exc.status, exc.message) from exc
        conn.send_response(204, b"", headers=[(HDR_DIRECT_PUT_LENGTH, str(length))])

    def _stream(self, conn: Connection, req: Request, call: Callable[[StreamWriter], object]) -> None:
        node_url, rest = node_url_of(req.headers)
        if node_url and self.cfg.target_url:
            self._stream_put(conn, req, call, node_url, rest)
            return
        writer = StreamWriter(conn)
        try:
            call(writer)
        except (ClientGone, HttpError, _Failure):
            raise
        except CallbackError as exc:
            if writer.started:
                self._abort(conn, req, exc)
            raise _Failure(502, exc.message) from exc
        except Exception as exc:
            if writer.started:
                self._abort(conn, req, exc)
            raise self._transform_failure(req, exc) from exc
        writer.finish()

    def _stream_put(
        self, conn: Connection, req: Request, call: Callable[[StreamWriter], object], node_url: str, rest: str
    ) -> None:
        """Direct put of a streaming result (``runtime.streamput``): PUT while the transform writes, answer 204.

        Nothing of the answer goes out before the PUT is complete, so any failure is a clean status.
        """
        assert self.cfg.target_url
        url = compose_direct_put_url(
            node_url, self.cfg.target_url, object_path(req.path), etl_args_of(req.query)
        )
        put = DirectPutStream(url, rest)
        writer = StreamWriter(put)
        try:
            call(writer)
            writer.finish()
        except (ClientGone, HttpError, _Failure):
            raise
        except DirectPutError as exc:
            raise _Failure(exc.status, exc.message) from exc
        except CallbackError as exc:
            raise _Failure(502, exc.message) from exc
        except Exception as exc:
            raise self._transform_failure(req, exc) from exc
        finally:
            put.close()  # resets an unfinished PUT: the receiver discards the partial object
        conn.send_response(204, b"", headers=[(HDR_DIRECT_PUT_LENGTH, str(put.delivered))])

    def _abort(self, conn: Connection, req: Request, exc: BaseException) -> None:
        self.log.error(
            "%s %s -> aborted after streaming began: %s: %s",
            req.method,
            unquote_path(req.path),
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        conn.abort()
        raise StreamAborted(str(exc)) from exc

    @staticmethod
    def _transform_failure(req: Request, exc: Exception) -> _Failure:
        return _failure_of(unquote_path(req.path), exc)


def _failure_of(path: str, exc: Exception) -> _Failure:
    return _Failure(500, f"transform failed for {path!r}: {type(exc).__name__}: {exc}", log_traceback=True)


def _read_callback(resp: http.client.HTTPResponse, n: int) -> bytes:
    """Read the callback body, turning transport failures into :class:`CallbackError`."""
    try:
        return resp.read() if n < 0 else resp.read(n)
    except (OSError, http.client.HTTPException) as exc:
        raise CallbackError(502, f"reading the callback body failed: {exc!r}") from exc


class _PullSteps:
    """The steps of one object of a pull batch, as its own ``GET`` takes them (``runtime.pullbatch.PullSteps``)."""

    def __init__(self, app: App, callback: CallbackClient) -> None:
        self.app = app
        self.callback = callback

    def item_path(self, path: str, query: str) -> str:
        return self.callback.item_path(path, query)

    def fetch_one(self, path: str, query: str) -> bytes:
        resp = self.callback.open(path, query)
        try:
            return _read_callback(resp, -1)
        finally:
            self.callback.release(resp)

    def transform_one(self, path: str, query: str, data: bytes) -> bytes | bytearray | memoryview:
        result = self.app._call_at(unquote_path(path), query, data)
        if not isinstance(result, (bytes, bytearray, memoryview)):
            raise _Failure(
                500, f"transform for {unquote_path(path)!r} returned {type(result).__name__}, expected bytes"
            )
        return result

    def destination(self, path: str, query: str, node: bytes | memoryview) -> tuple[str, str] | None:
        node_url, rest = node_url_of({HDR_NODE_URL.lower(): bytes(node).decode("utf-8", "replace")})
        target = self.app.cfg.target_url
        if not (node_url and target):
            return None
        return compose_direct_put_url(node_url, target, object_path(path), etl_args_of(query)), rest

    def put_one(self, url: str, rest: str, result: bytes) -> int:
        return direct_put(url, result, rest)

    def failed(self, path: str, exc: Exception) -> tuple[int, bytes]:
        if isinstance(exc, _Failure):
            fail = exc
        elif isinstance(exc, CallbackError):
            fail = _Failure(502, exc.message)
        elif isinstance(exc, DirectPutError):
            fail = _Failure(exc.status, exc.message)
        else:
            fail = _Failure(500, f"{type(exc).__name__}: {exc}", log_traceback=True)
        self.app.log.error(
            "GET %s (batched) -> %d: %s",
            unquote_path(path),
            fail.status,
            fail.message,
            exc_info=fail.__cause__,
        )
        return fail.status, fail.message.encode("utf-8", "replace")
