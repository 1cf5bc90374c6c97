"""The wire format of the file transport: pods read and write the job's objects in place.

Why: on one machine with both buckets on local file systems, sending an object's bytes to a pod and
its result back over loopback HTTP copies every byte five times through two processes, and even
passing each object's open files costs the engine half a dozen system calls per object. Instead
the engine names the objects: the pod opens each source below the job's source directory, runs the
transform, writes the result to a temp file below the destination directory and gives it its name
(``runtime.bucketfiles``, the same code as the engine's local buckets), then answers one small
verdict per object. No object byte crosses the socket, and the engine makes no system call per
object. A pod of the project's runtime says it listens with header :data:`FILE_HEADER` in its
``/health`` answer (like batches); AIS's servers and foreign images never do.

The socket is a ``SOCK_SEQPACKET`` Unix socket in the pod's private directory (message boundaries
hold); only the pod's own user may connect. A request is JSON ``{"q": query, "s": source dir,
"r": its real path, "d": destination dir, "u": destination URL, "f": fsync, "m": the engine's
umask, "o": [[path, source name, destination name], ...]}`` (query: the ``etl_args`` query
string every object of a single HTTP request would carry; path: the request path that request
would have). The answer is JSON
``[[status, value], ...]`` in the same order: ``[200, result length]`` once the result has its
name, ``[NOT_RUN, 0]`` for an object left for a message of its own, ``[STORE_FAILED, message]``
when the source could not be read or the result not stored, or ``[status, error message]`` with
the status and text an HTTP request would have got.

Each worker process of a pod accepts connections on the one socket and runs the messages of its
own connections, so its first message on a new connection says which it is: JSON
``{"w": worker slot, "n": workers}``. The engine then keeps each worker busy with its own
messages instead of handing two to one worker while another idles (``dataplane.filelinks``).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "STORE_FAILED",
    "Buckets",
    "FILE_HEADER",
    "FILE_SOCKET_ENV",
    "FILE_SOCKET_NAME",
    "FILE_VERSION",
    "MAX_MESSAGE",
    "MAX_OBJECTS",
    "NOT_RUN",
    "FileWireError",
    "decode_answer",
    "decode_hello",
    "decode_request",
    "encode_answer",
    "encode_hello",
    "encode_request",
    "short_path",
]

FILE_HEADER = "X-AIS-ETL-Files"
"""In a ``/health`` answer: the file transport version the pod serves on its socket."""
FILE_VERSION = "3"
"""2 had no hello on a new connection."""
FILE_SOCKET_ENV = "AIS_ETL_FILE_SOCKET"
"""Where the pod listens (set by the local backend: a path in the pod's private 0700 directory)."""
FILE_SOCKET_NAME = "files.sock"
MAX_OBJECTS = 120
"""Objects per message (the engine sends at most 96; names keep a message far below :data:`MAX_MESSAGE`)."""
MAX_MESSAGE = 1 << 18
"""The longest message either side reads (error messages are capped to keep answers below it)."""
MESSAGE_CAP = 1024
"""Bytes of an error message an answer carries per object."""
NOT_RUN = 0
"""The status of an object the pod did not transform (its message used up its time): send it alone."""
STORE_FAILED = -1
"""The status of an object whose source could not be read or whose result could not be stored."""

_UNIX_PATH_MAX = 100


class FileWireError(ValueError):
    """A message that does not match the format."""


@dataclass(frozen=True)
class Buckets:
    """The job's two bucket directories, as every message names them."""

    src: str
    """The source bucket's directory (objects are read below it)."""
    src_real: str
    """Its real path: a link in it is followed only to a place under this."""
    dst: str
    """The destination bucket's directory (results are written below it)."""
    dst_url: str
    """The destination's URL, as error messages name it."""
    fsync: bool
    """Flush each result to disk before it gets its name."""
    umask: int = 0o022
    """The engine's umask: results and new directories get the modes the engine would give them
    (the pod itself runs with umask 077)."""


def encode_request(query: str, buckets: Buckets, objects: list[tuple[str, str, str]]) -> bytes:
    """Encode one message: ``objects`` are ``(request path, source name, destination name)``."""
    msg = {
        "q": query,
        "s": buckets.src,
        "r": buckets.src_real,
        "d": buckets.dst,
        "u": buckets.dst_url,
        "f": int(buckets.fsync),
        "m": buckets.umask,
        "o": objects,
    }
    return json.dumps(msg, separators=(",", ":")).encode()


def decode_request(data: bytes) -> tuple[str, Buckets, list[tuple[str, str, str]]]:
    """Return ``(query, buckets, objects)``; refuse a message that does not match the format."""
    try:
        msg = json.loads(data)
        query, objects = msg["q"], msg["o"]
        buckets = Buckets(msg["s"], msg["r"], msg["d"], msg["u"], bool(msg["f"]), msg["m"])
        if not (
            isinstance(query, str)
            and all(isinstance(v, str) for v in (buckets.src, buckets.src_real, buckets.dst, buckets.dst_url))
            and isinstance(buckets.umask, int)
            and 0 <= buckets.umask <= 0o777
            and isinstance(objects, list)
            and all(
                isinstance(o, list) and len(o) == 3 and all(isinstance(v, str) for v in o) for o in objects
            )
        ):
            raise TypeError("q, s, r, d, u must be strings, o a list of [path, source, destination]")
    except (ValueError, KeyError, TypeError) as err:
        raise FileWireError(f"bad request: {err}") from None
    if not 1 <= len(objects) <= MAX_OBJECTS:
        raise FileWireError(f"{len(objects)} object(s) in a message: need 1..{MAX_OBJECTS}")
    return query, buckets, [(o[0], o[1], o[2]) for o in objects]


def encode_hello(worker: int, workers: int) -> bytes:
    """Encode the first message of a connection: which of the pod's ``workers`` accepted it."""
    return json.dumps({"w": worker, "n": workers}).encode()


def decode_hello(data: bytes) -> tuple[int, int]:
    """Return ``(worker, workers)`` of a connection's first message; refuse anything else."""
    try:
        hello = json.loads(data)
        worker, workers = hello["w"], hello["n"]
    except (ValueError, KeyError, TypeError) as err:
        raise FileWireError(f"bad hello: {err!r}") from None
    if not (type(worker) is int and type(workers) is int and 0 <= worker < workers):
        raise FileWireError(f"bad hello: worker {worker!r} of {workers!r}")
    return worker, workers


def encode_answer(verdicts: Sequence[tuple[int, int | str]]) -> bytes:
    capped = [(s, v if isinstance(v, int) else v[:MESSAGE_CAP]) for s, v in verdicts]
    return json.dumps(capped, separators=(",", ":")).encode()


def decode_answer(data: bytes, count: int) -> list[tuple[int, Any]]:
    """Return ``count`` verdicts ``(status, length or message)``; refuse anything else."""
    try:
        verdicts = json.loads(data)
        out = [(int(s), v) for s, v in verdicts]
    except (ValueError, TypeError) as err:
        raise FileWireError(f"bad answer: {err}") from None
    if len(out) != count:
        raise FileWireError(f"answer has {len(out)} verdict(s) for {count} object(s)")
    return out


@contextlib.contextmanager
def short_path(path: str) -> Iterator[str]:
    """Yield a name for ``path`` short enough for ``bind``/``connect`` (108 bytes on Linux).

    A long path is reached through ``/proc/self/fd/<dir>/<name>`` of its directory, opened for the
    call only (``O_PATH``: no descriptor that could read the directory, and none leaves the process).
    """
    if len(os.fsencode(path)) < _UNIX_PATH_MAX:
        yield path
        return
    directory, name = os.path.split(path)
    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dfd}/{name}"
    finally:
        os.close(dfd)
