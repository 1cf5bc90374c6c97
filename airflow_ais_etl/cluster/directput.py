"""Direct put on the target gateway: a pod PUTs its result, the gateway writes it atomically.

An offline job that asks for direct put grants the pods one destination bucket for its duration:
a random token kept, with the bucket's URL, in a private grants file (``<store>.puts``, 0600). The job names
each result ``<gateway>/<escaped uname>?uuid=<token>`` in header ``Ais-Node-Url``; the pod
(AIS's servers or this project's runtime) PUTs to ``AIS_TARGET_URL``'s path + that path, i.e.
``/v1/etl/_object/<secret>/<uname>?uuid=<token>``. The gateway checks secret, token and bucket,
streams the body into a temp file and renames it only when the body is complete and the grant
still stands, so an aborted job (whose grant is revoked first) leaves no partial object.

That is the local backend's kind of grant (:class:`FileTokens` for the job, :class:`FileGrants` for
the gateway). On Kubernetes the job signs its grants instead (:mod:`.sealedgrants`); both kinds
meet the gateway through :class:`PutGrants` and the job through :class:`PutTokens`.

Standard library only; the destination is written through :mod:`airflow_ais_etl.dataplane.storage`,
imported on first use like the gateway's reads of object stores.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, quote

from airflow_ais_etl.cluster.gatewaypaths import Refusal
from airflow_ais_etl.cluster.private import locked, write_private_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "DirectPutGrant",
    "FileGrants",
    "FileTokens",
    "PutGrants",
    "PutTarget",
    "PutTokens",
    "grant",
    "granted",
    "grants_held",
    "puts_store",
    "read_body",
    "revoke",
    "token_of",
    "umask_of",
]

_CHUNK = 1 << 20
_TOKEN_PARAM = "uuid"
GATEWAY_SECONDS = 1.0
"""How long a job reuses the URL of a target's gateway before asking the backend again (once per
object cost more than the rest of a small object's bookkeeping)."""


class PutTarget(NamedTuple):
    """What a grant lets pods write: the bucket's URL, and the umask its new files and directories get
    (the job's engine's, so results look as if the engine wrote them; ``None``: the gateway's own)."""

    url: str
    umask: int | None


def umask_of(value: Any) -> int | None:
    """The umask a grant carries, if it is one (0 to 0o777)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777 else None


class PutGrants(Protocol):
    """The gateway's side of direct-put grants: which bucket a PUT may write, and for how long."""

    def url_of(self, query: str, bucket: str) -> PutTarget:
        """Where ``bucket`` is if the request's query grants writes into it now; else a 403 ``Refusal``."""
        ...

    def at_commit(self, query: str, bucket: str) -> PutTarget:
        """The same, checked again right before the object is named; else a 409 ``Refusal``."""
        ...

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Keep the grants as they are while commits checked inside it happen."""
        ...

    def revoke(self, grant_id: str, proof: str) -> None:
        """A job ends its grant here (signed grants); else a ``Refusal`` that says why not."""
        ...


def puts_store(directory: str) -> str:
    """Return the path prefix of the direct-put grants kept in ``directory`` (the gateway's grants dir)."""
    return os.path.join(directory, "directput")


def _grants_file(store: str) -> str:
    return store + ".puts"


def _read(path: str) -> dict[str, dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


_cache: dict[str, tuple[tuple[int, int, int], dict[str, dict[str, str]]]] = {}
_cache_lock = threading.Lock()


def _read_current(path: str) -> dict[str, dict[str, str]]:
    """Return the grants in ``path``, parsed again only when the file changed (a write replaces it).

    The gateway checks every direct put against them twice; one ``stat`` instead of an open, a read
    and a JSON parse each time.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    data = _read(path)
    with _cache_lock:
        _cache[path] = (key, data)
    return data


def _update(store: str, change: Callable[[dict[str, dict[str, str]]], object]) -> None:
    with locked(os.path.abspath(store) + ".lock"):
        grants = _read(_grants_file(store))
        change(grants)
        write_private_json(_grants_file(store), grants)


def grant(store: str, bucket: str, url: str, umask: int | None = None) -> str:
    """Let pods PUT into gateway bucket ``bucket`` (at ``url``) until :func:`revoke`; return the token.

    :param umask: the modes the gateway gives what it creates there (default: its own umask, 077)
    """
    token = secrets.token_urlsafe(18)

    def add(grants: dict[str, dict[str, Any]]) -> None:
        grants[token] = {"bucket": bucket, "url": url, "umask": umask}

    _update(store, add)
    return token


def revoke(store: str, token: str) -> None:
    """End a grant: later (and still unfinished) PUTs with ``token`` are refused."""
    _update(store, lambda grants: grants.pop(token, None))


@contextlib.contextmanager
def grants_held(store: str) -> Iterator[None]:
    """Keep every grant as it is (a shared lock): a commit checked inside ends before any revoke does."""
    with locked(os.path.abspath(store) + ".lock", shared=True):
        yield


def token_of(query: str) -> str:
    """The grant token a direct put's query carries (``uuid``, as AIS names it); empty if none."""
    return next((v for k, v in parse_qsl(query) if k == _TOKEN_PARAM), "")


def granted(store: str, query: str, bucket: str) -> PutTarget | None:
    """Return where ``bucket`` is when the request's token (query ``uuid``) grants writes into it."""
    token = token_of(query)
    entry = _read_current(_grants_file(store)).get(token) if token else None
    if not isinstance(entry, dict) or entry.get("bucket") != bucket or not entry.get("url"):
        return None
    return PutTarget(str(entry["url"]), umask_of(entry.get("umask")))


class PutTokens(Protocol):
    """Where a job's direct-put token comes from: a grant file entry, or a signature (``sealedgrants``)."""

    def current(self) -> str:
        """The token to send with the next object."""
        ...

    def revoke(self, gateways: Iterable[str]) -> None:
        """The job ended: refuse later PUTs with its tokens at ``gateways`` (origins it sent pods to),
        and return once none of its objects is being named there."""
        ...


class FileTokens:
    """One grant in the private grants file the local gateway reads: revoked at once by deleting it."""

    def __init__(self, store: str, bucket: str, url: str, umask: int | None = None) -> None:
        self.store = store
        self.token = grant(store, bucket, url, umask)

    def current(self) -> str:
        return self.token

    def revoke(self, gateways: Iterable[str]) -> None:
        """Delete the grant from the file every gateway reads (``gateways`` need not be told)."""
        revoke(self.store, self.token)


class FileGrants:
    """The gateway's side of grants kept in files: checked at the start of a PUT and at its commit."""

    def __init__(self, store: str) -> None:
        self.store = store

    def url_of(self, query: str, bucket: str) -> PutTarget:
        target = granted(self.store, query, bucket)
        if target is None:
            raise Refusal(403, f"no running job lets pods write into bucket {bucket!r}")
        return target

    def at_commit(self, query: str, bucket: str) -> PutTarget:
        target = granted(self.store, query, bucket)
        if target is None:
            raise Refusal(409, "the job ended while the object arrived; it was not stored")
        return target

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Keep every grant as it is: an abort's revoke waits until the commits checked inside end."""
        return grants_held(self.store)

    def revoke(self, grant_id: str, proof: str) -> None:
        raise Refusal(405, "this gateway's grants end when their job deletes them from its grants file")


class DirectPutGrant:
    """One job's permission to let pods deliver results into one destination bucket."""

    def __init__(self, bucket: str, gateway_of: Callable[[str], str], tokens: PutTokens) -> None:
        self.bucket = bucket
        self._escaped_dir = quote(f"ais/@#/{bucket}/", safe="")
        """The uname's bucket part, escaped once (``quote`` goes byte by byte through text to escape)."""
        self._gateway_of = gateway_of
        self._gateways: dict[str, tuple[str, float]] = {}
        self.tokens = tokens

    def url_for(self, target_id: str, dst_name: str) -> str:
        """Return the ``Ais-Node-Url`` value for result ``dst_name`` of a pod on ``target_id``."""
        uname = self._escaped_dir + quote(dst_name, safe="")  # quote(f"ais/@#/{bucket}/{dst_name}")
        return f"{self._gateway(target_id)}/{uname}?{_TOKEN_PARAM}={self.tokens.current()}"

    def _gateway(self, target_id: str) -> str:
        """The target's gateway URL, asked again after :data:`GATEWAY_SECONDS` (finding it reads state files)."""
        now = time.monotonic()
        known = self._gateways.get(target_id)
        if known is None or now - known[1] > GATEWAY_SECONDS:
            known = self._gateways[target_id] = (self._gateway_of(target_id), now)
        return known[0]

    def revoke(self) -> None:
        """End the grant at every gateway that got one of its tokens."""
        self.tokens.revoke([origin for origin, _ in self._gateways.values()])


def read_body(rfile: Any, headers: Any) -> Iterator[memoryview]:
    """Yield a request body framed by ``Content-Length`` or chunked encoding; raise ``EOFError`` if cut.

    The pieces are views of one buffer, read into again for the next piece: use (or copy) each
    before asking for the next. Receiving 64 MiB took the reading thread 11-24 ms of CPU with a
    new 1 MiB object per piece, 10-17 ms this way (bench/README, eighth session).
    """
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        buffer = None
        while True:
            line = rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise EOFError("chunked body ended early")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            buffer = buffer or _buffer_for(max(size, _CHUNKED_PIECE))  # (a sender's chunks: one size)
            yield from _exactly(rfile, size, buffer)
            rfile.readline(4)
        return
    length = headers.get("Content-Length")
    if length is None:
        raise ValueError("a direct put needs Content-Length or chunked encoding")
    yield from _exactly(rfile, int(length), _buffer_for(int(length)))


_CHUNKED_PIECE = 64 << 10
"""The smallest buffer for a chunked body: a small first chunk must not make every later piece small."""


def _buffer_for(size: int) -> memoryview:
    """A buffer for pieces of a body of ``size`` bytes: no larger than it (a small object's PUT
    zeroes no 1 MiB), at most :data:`_CHUNK`."""
    return memoryview(bytearray(max(1, min(size, _CHUNK))))


def _exactly(rfile: Any, size: int, buffer: memoryview) -> Iterator[memoryview]:
    while size > 0:
        got = rfile.readinto(buffer[: min(size, len(buffer))])
        if not got:
            raise EOFError(f"body ended {size} byte(s) early")
        size -= got
        yield buffer[:got]
