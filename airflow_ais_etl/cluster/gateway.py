"""The target gateway: serves source objects to pods that call back through ``AIS_TARGET_URL``.

hpull/hrev pods (and ``url`` transforms) fetch ``AIS_TARGET_URL + <escaped uname>``, i.e.
``GET /v1/etl/_object/<secret>/<escaped uname>``. The gateway checks the secret, decodes the uname
(``ais/@#/<bucket>/<object>``), maps the bucket to a directory through a small JSON file
(``{"<bucket_id>": {"url": "..."}}``) and streams the file.

With ``--grants DIR`` (the local backend) the secret is the ETL's own, and the gateway serves only
the buckets that a running job of that ETL granted it (:mod:`airflow_ais_etl.cluster.grants`);
anything else is a 403.

Connections stay open between requests (HTTP/1.1; closed after :data:`IDLE_SECONDS` idle), and
pods of this project send many GETs or direct PUTs in one request (:mod:`.gatewaybatch`).

It runs as its own process (a sidecar next to the pods) and imports only the standard library;
a bucket that is not a local directory, the direct puts and batched reads go through
:mod:`airflow_ais_etl.dataplane.storage`, imported on first use.

Run: ``python -m airflow_ais_etl.cluster.gateway --host H --port P (--buckets FILE | --grants DIR)``
with the secret in ``$AIS_ETL_GATEWAY_SECRET`` (never on the command line: ``ps`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import os
import secrets
import stat
import string
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.bucketmap import read_buckets
from airflow_ais_etl.cluster.directput import FileGrants, puts_store
from airflow_ais_etl.cluster.gatewaybatch import answer_gets, answer_puts
from airflow_ais_etl.cluster.gatewaypaths import Refusal as _Refusal
from airflow_ais_etl.cluster.gatewaypaths import decode_uname, query_of
from airflow_ais_etl.cluster.gatewaypaths import local_root as _local_root
from airflow_ais_etl.cluster.gatewaypaths import split_uname as _split_uname
from airflow_ais_etl.cluster.grants import GrantReader, live_buckets
from airflow_ais_etl.cluster.sealedgrants import GRANTS_PREFIX, PUT_KEY_ENV, REVOKE_HEADER, SealedGrants
from airflow_ais_etl.runtime.http1.batchwire import (
    ALONE,
    BATCH_HEADER,
    BATCH_VERSION,
    decode_items,
    encode_results,
)

if TYPE_CHECKING:
    import io
    from collections.abc import Callable, Iterable, Sequence

    from airflow_ais_etl.cluster.directput import PutGrants, PutTarget

__all__ = [
    "CALLBACK_PREFIX",
    "GatewayServer",
    "main",
    "new_secret",
    "serve_gateway",
]

CALLBACK_PREFIX = "/v1/etl/_object/"
SECRET_ENV = "AIS_ETL_GATEWAY_SECRET"
GET_BATCH_BODY = 1 << 20
PUT_BATCH_BODY = 64 << 20
"""The largest bodies of a batch of callback GETs (names only) and of direct PUTs (results)."""
BATCH_OBJECT = 1 << 20
"""Objects larger than this are left out of a batch GET's answer (status 0): the pod fetches them alone."""
IDLE_SECONDS = 60.0
"""A kept-alive connection with no new request for this long is closed (pods keep theirs in a pool)."""
_CHUNK = 1 << 20


def new_secret() -> str:
    """Return a fresh callback secret: 10 random letters, like the reference target's."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(10))


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server holding the secret and the bucket map."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        secret: str,
        buckets_file: str,
        grants_dir: str | None = None,
        put_key: str = "",
    ) -> None:
        """:param put_key: check direct puts' signed grants with this key (Kubernetes) instead of the
        grant files next to ``grants_dir`` or ``buckets_file`` (the local backend)."""
        if not secret and not grants_dir:
            raise ValueError("the gateway needs a non-empty secret")
        super().__init__(address, _Handler)
        self.secret = secret.encode()
        self.buckets_file = buckets_file
        self.grants = GrantReader(grants_dir) if grants_dir else None
        self.put_grants: PutGrants = (
            SealedGrants(put_key.encode())
            if put_key
            else FileGrants(puts_store(grants_dir or os.path.dirname(os.path.abspath(buckets_file))))
        )
        self._buckets: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._remote: dict[tuple[str, int | None], Any] = {}
        self._real_roots: dict[str, str] = {}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def callback_base(self) -> str:
        """Return the ``AIS_TARGET_URL`` value pods get for this gateway."""
        return f"{self.url}{CALLBACK_PREFIX}{self.secret.decode()}"

    def bucket_url(self, bucket: str, secret: str = "") -> str | None:
        """Return the URL of ``bucket``, re-reading the map when the name is unknown.

        In grants mode: the URL only while a running job of the ETL owning ``secret`` granted it.
        """
        if self.grants is not None:
            data = self.grants.lookup(secret)
            url = live_buckets(data).get(bucket) if data else None
            if url is None:
                etl = data.get("etl", "?") if data else "?"
                raise _Refusal(403, f"bucket {bucket!r} is not granted to a running job of etl {etl}")
            return url
        with self._lock:
            entry = self._buckets.get(bucket)
            if entry is None:
                try:
                    self._buckets = read_buckets(self.buckets_file)
                except (OSError, ValueError):
                    return None
                entry = self._buckets.get(bucket)
        return entry.get("url") if entry else None

    def real_root(self, root: str) -> str:
        """Return the resolved directory of a local bucket and a separator (resolved once: if it is
        swapped for another later, names resolve outside the remembered one and are refused)."""
        real = self._real_roots.get(root)
        if real is None:
            real = self._real_roots[root] = os.path.realpath(root).rstrip(os.sep) + os.sep
        return real

    def remote_bucket(self, url: str, umask: int | None = None) -> Any:
        """Open (once) a bucket through the storage module; ``umask``: for what direct puts create in it."""
        bucket = self._remote.get((url, umask))  # (a dict read: no lock for each batch item)
        if bucket is not None:
            return bucket
        with self._lock:
            bucket = self._remote.get((url, umask))
            if bucket is None:
                from airflow_ais_etl.dataplane.storage.opener import open_bucket

                # No fsync per object: the job's journal syncs the destination's file system before
                # it notes objects done, whoever wrote them (dataplane.journal), as for hpush.
                bucket = self._remote[url, umask] = open_bucket(url, fsync=False, umask=umask)
            return bucket


class _Handler(BaseHTTPRequestHandler):
    """Serve ``GET``/``HEAD`` on the callback path; everything else is refused."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: GatewayServer
    _batch_secret = ""
    """The secret of the batch being answered, checked once for all its items."""

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet per request: pods call back once per object."""

    def handle_one_request(self) -> None:
        """Wait at most :data:`IDLE_SECONDS` for the next request of a kept-alive connection, then close it."""
        self.connection.settimeout(IDLE_SECONDS)
        super().handle_one_request()

    def parse_request(self) -> bool:
        """A request has begun: no timeout for its head and body, which may come slowly (a streamed PUT)."""
        self.connection.settimeout(None)
        return super().parse_request()

    def do_GET(self) -> None:
        if self.headers.get(BATCH_HEADER, ALONE) != ALONE:
            self._batch(answer_gets, GET_BATCH_BODY)
            return
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_PUT(self) -> None:
        """Direct put: write a pod's result atomically into a bucket a running job granted."""
        from airflow_ais_etl.cluster.directput import read_body

        if self.headers.get(BATCH_HEADER, ALONE) != ALONE:
            self._batch(answer_puts, PUT_BATCH_BODY)
            return
        try:
            self._store(self.path, read_body(self.rfile, self.headers))
            self._reply_empty()
        except _Refusal as refusal:
            self.close_connection = True
            self._reply(refusal.status, refusal.text)
        except Exception as err:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._reply(400 if isinstance(err, ValueError) else 500, f"direct put failed: {err}")

    def do_DELETE(self) -> None:
        """A job revokes its signed direct-put grant (``sealedgrants``); nothing else is deleted here."""
        try:
            if not self.path.startswith(GRANTS_PREFIX) or "/" in self.path[len(GRANTS_PREFIX) :]:
                raise _Refusal(404, f"no such endpoint {self.path.split('?', 1)[0]!r}")
            grant_id = self.path[len(GRANTS_PREFIX) :]
            self.server.put_grants.revoke(grant_id, self.headers.get(REVOKE_HEADER, ""))
        except _Refusal as refusal:
            self.close_connection = True
            self._reply(refusal.status, refusal.text)
            return
        self.send_response(204)
        self.end_headers()

    def _store(self, path: str, chunks: Iterable[memoryview]) -> None:
        """Write one object atomically if the request's token grants its bucket, before and at the commit."""
        _, bucket, obj = self._parse(path)
        grants, query = self.server.put_grants, query_of(path)
        writer = self.writer_for(grants.url_of(query, bucket), obj)
        try:
            for chunk in chunks:
                writer.write(chunk)
            with grants.held():  # an abort's revoke waits for this commit
                grants.at_commit(query, bucket)
                writer.commit()
        except BaseException:
            writer.discard()
            raise

    # ---------------------------------------------------------------- batches (runtime.targetbatch)

    def _batch(
        self, answer: Callable[[Any, str, list[tuple[str, Any]]], list[tuple[int, bytes]]], limit: int
    ) -> None:
        """Answer many objects of one request (``cluster.gatewaybatch``); a body cut short stores nothing."""
        try:
            self._batch_secret = self._checked_secret(self.path)
            head = f"{CALLBACK_PREFIX}{self._batch_secret}/"
            if self.path != head:
                raise _Refusal(400, "a batch goes to the callback path with nothing after the secret")
            length = int(self.headers.get("Content-Length") or -1)
            if not 0 <= length <= limit:
                raise _Refusal(413, f"a batch needs Content-Length of at most {limit} bytes")
            body = self.rfile.read(length)
            if len(body) != length:
                raise _Refusal(400, "the batch body ended early")
            items = decode_items(body, int(self.headers[BATCH_HEADER]))
        except (_Refusal, ValueError) as err:
            self.close_connection = True
            refusal = err if isinstance(err, _Refusal) else _Refusal(400, f"bad batch: {err}")
            self._reply(refusal.status, refusal.text)
            return
        reply = b"".join(encode_results(answer(self, head, items)))
        self.send_response(200)
        self.send_header(BATCH_HEADER, BATCH_VERSION)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    # what cluster.gatewaybatch needs
    def parse_item(self, path: str) -> tuple[str, str, str]:
        return self._parse(path, checked=self._batch_secret)

    def bucket_url(self, bucket: str, secret: str) -> str | None:
        return self.server.bucket_url(bucket, secret)

    def writer_for(self, target: PutTarget, obj: str) -> Any:
        """An atomic writer into a granted bucket; a bucket the gateway cannot open is a 500 that says so."""
        try:
            bucket = self.server.remote_bucket(target.url, target.umask)
        except Exception as err:
            raise _Refusal(
                500,
                f"this target's gateway cannot open destination {target.url}: {err}. Direct put writes with the "
                "gateway's own credentials and mounts: give it access, or init the ETL without direct put",
            ) from None
        return bucket.writer(obj)

    @property
    def put_grants(self) -> PutGrants:
        return self.server.put_grants

    def _reply_empty(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reply(self, status: int, text: str, *, head: bool = False) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # e.g. a refused PUT whose body stays unread: the client must not reuse it
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, *, head: bool) -> None:
        try:
            secret, bucket, obj = self._parse(self.path)
            self._send_object(secret, bucket, obj, head=head)
        except _Refusal as refusal:
            self._reply(refusal.status, refusal.text, head=head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _check_secret(self, secret: str) -> None:
        if self.server.grants is not None:
            if self.server.grants.lookup(secret) is None:  # a file named by the secret's hash
                raise _Refusal(403, "unrecognized request source")
        elif not hmac.compare_digest(secret.encode(), self.server.secret):
            raise _Refusal(403, "unrecognized request source")

    def _checked_secret(self, raw: str) -> str:
        path = raw.split("?", 1)[0]
        if not path.startswith(CALLBACK_PREFIX):
            raise _Refusal(404, f"no such endpoint {path!r}")
        secret = path[len(CALLBACK_PREFIX) :].partition("/")[0]
        self._check_secret(secret)
        return secret

    def _parse(self, raw: str, checked: str = "") -> tuple[str, str, str]:
        """Check the secret on the raw path (unless it is ``checked``, a batch's), then decode the uname after it."""
        path = raw.split("?", 1)[0]
        if not path.startswith(CALLBACK_PREFIX):
            raise _Refusal(404, f"no such endpoint {path!r}")
        secret, _, rest = path[len(CALLBACK_PREFIX) :].partition("/")
        if not checked or secret != checked:
            self._check_secret(secret)
        if not rest:
            raise _Refusal(400, "missing object uname after the secret")
        try:
            uname = decode_uname(rest)
        except UnicodeDecodeError:
            raise _Refusal(400, "object uname is not valid UTF-8 once decoded") from None
        return (secret, *_split_uname(uname))

    def whole_object(self, url: str, bucket: str, obj: str) -> bytes | None:
        """The object's bytes for a batch answer; ``None`` when it is larger than :data:`BATCH_OBJECT`.

        Read through the storage module, whose local buckets remember the directories known to be
        inside (one ``lstat`` per object instead of resolving every component of its path).
        """
        from airflow_ais_etl.dataplane.storage.base import ObjectNotFoundError, StorageError

        try:
            return self.server.remote_bucket(url).read_small(obj, BATCH_OBJECT)
        except ObjectNotFoundError:
            raise _Refusal(404, f"object {bucket}/{obj} does not exist") from None
        except StorageError as err:
            if "resolves outside" in str(err):
                raise _Refusal(400, f"object {obj!r} resolves outside its bucket") from None
            raise _Refusal(500, f"cannot read {bucket}/{obj}: {err}") from None

    def _open_local(self, root: str, bucket: str, obj: str) -> io.FileIO:
        """Open a regular file of a local bucket, refusing names that resolve outside it."""
        path = os.path.join(root, obj)
        if not os.path.realpath(path).startswith(self.server.real_root(root)):
            raise _Refusal(400, f"object {obj!r} resolves outside its bucket")
        try:
            f = open(path, "rb", buffering=0)  # unbuffered: no isatty and seek calls per object
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise _Refusal(404, f"object {bucket}/{obj} does not exist") from None
        except OSError as err:
            raise _Refusal(500, f"cannot read {bucket}/{obj}: {err.strerror}") from None
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            f.close()
            raise _Refusal(404, f"object {bucket}/{obj} does not exist")
        return f

    def _send_object(self, secret: str, bucket: str, obj: str, *, head: bool) -> None:
        url = self.server.bucket_url(bucket, secret)
        if url is None:
            raise _Refusal(404, f"bucket {bucket!r} does not exist")
        root = _local_root(url)
        if root is None:
            self._send_remote(url, obj, head=head)
            return
        with self._open_local(root, bucket, obj) as f:
            st = os.fstat(f.fileno())
            self._send_head(st.st_size)
            if head or st.st_size == 0:
                return
            self.wfile.flush()
            sent = self.connection.sendfile(f, 0, st.st_size)
            if sent != st.st_size:
                # The file shrank while we sent it: the length we promised is a lie, so hang up.
                self.close_connection = True

    def _send_remote(self, url: str, obj: str, *, head: bool) -> None:
        try:
            bucket = self.server.remote_bucket(url)
            info = bucket.stat(obj)
        except Exception as err:
            raise _Refusal(500, f"cannot open bucket {url}: {err}") from None
        if info is None:
            raise _Refusal(404, f"object {obj!r} does not exist in {url}")
        self._send_head(info.size)
        if head:
            return
        sent = 0
        try:
            for chunk in bucket.read_chunks(obj, _CHUNK):
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception:
            self.close_connection = True
            return
        if sent != info.size:
            self.close_connection = True

    def _send_head(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()


def serve_gateway(
    host: str, port: int, secret: str, buckets_file: str
) -> tuple[GatewayServer, threading.Thread]:
    """Start a gateway in a daemon thread (for tests and in-process use).

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = GatewayServer((host, port), secret, buckets_file)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ais-etl-gateway", daemon=True
    )
    thread.start()
    return server, thread


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway in the foreground; print ``listening on http://H:P`` first."""
    parser = argparse.ArgumentParser(prog="python -m airflow_ais_etl.cluster.gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--secret", default=os.environ.get(SECRET_ENV, ""), help=f"default: ${SECRET_ENV}")
    parser.add_argument("--buckets", default="", help="JSON bucket map file")
    parser.add_argument("--grants", default="", help="per-ETL grants directory (instead of --buckets)")
    args = parser.parse_args(argv)
    if not args.grants and not args.buckets:
        parser.error("--buckets or --grants is required")
    if not args.secret and not args.grants:
        parser.error(f"--secret (or ${SECRET_ENV}) is required")
    put_key = os.environ.get(PUT_KEY_ENV, "")
    server = GatewayServer((args.host, args.port), args.secret, args.buckets, args.grants or None, put_key)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
