"""The wire format of the fd transport: objects travel between engine and pod as file descriptors.

Why: on one machine with both buckets on local file systems, sending an object's bytes to a pod and
its result back over loopback HTTP copies every byte five times through two processes. Instead the
engine opens the source file read-only and the destination's temp file write-only and passes both
descriptors (``SCM_RIGHTS``) over a Unix socket in the pod's private directory; the pod reads, runs
the transform, writes, closes, and answers one small verdict per object. No object byte crosses the
socket. A pod of the project's runtime says it listens with header :data:`FD_HEADER` in its
``/health`` answer (like batches); AIS's servers and foreign images never do.

The socket is ``SOCK_SEQPACKET``: message boundaries hold, and the descriptors ride with their
message. A request is JSON ``{"q": query, "o": [path, ...]}`` (query: the ``etl_args`` query string
every object of a single HTTP request would carry; path: ``/<bucket>/<object>``) with two
descriptors per object, source then destination, in order. The answer is JSON ``[[status, value],
...]`` in the same order: ``[200, result length]``, ``[NOT_RUN, 0]`` for an object left for a
message of its own, or ``[status, error message]`` with the status and text an HTTP request would
have got.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "FD_HEADER",
    "FD_SOCKET_ENV",
    "FD_SOCKET_NAME",
    "FD_VERSION",
    "MAX_MESSAGE",
    "MAX_OBJECTS",
    "NOT_RUN",
    "FdFormatError",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_request",
    "short_path",
]

FD_HEADER = "X-AIS-ETL-Fd"
"""In a ``/health`` answer: the fd transport version the pod serves on its socket."""
FD_VERSION = "1"
FD_SOCKET_ENV = "AIS_ETL_FD_SOCKET"
"""Where the pod listens (set by the local backend: a path in the pod's private 0700 directory)."""
FD_SOCKET_NAME = "fd.sock"
MAX_OBJECTS = 120
"""Objects per message: two descriptors each stays under the kernel's SCM_MAX_FD (253)."""
MAX_MESSAGE = 1 << 18
"""The longest message either side reads (error messages are capped to keep answers below it)."""
MESSAGE_CAP = 1024
"""Bytes of an error message an answer carries per object."""
NOT_RUN = 0
"""The status of an object the pod did not transform (its message used up its time): send it alone."""

_UNIX_PATH_MAX = 100


class FdFormatError(ValueError):
    """A message that does not match the format (or the number of descriptors it came with)."""


def encode_request(query: str, paths: Sequence[str]) -> bytes:
    return json.dumps({"q": query, "o": list(paths)}, separators=(",", ":")).encode()


def decode_request(data: bytes, nfds: int) -> tuple[str, list[str]]:
    """Return ``(query, paths)``; refuse a message whose descriptors are not two per object."""
    try:
        msg = json.loads(data)
        query, paths = msg["q"], msg["o"]
    except (ValueError, KeyError, TypeError) as err:
        raise FdFormatError(f"bad request: {err}") from None
    if (
        not isinstance(query, str)
        or not isinstance(paths, list)
        or not all(isinstance(p, str) for p in paths)
    ):
        raise FdFormatError("bad request: q must be a string, o a list of strings")
    if not 1 <= len(paths) <= MAX_OBJECTS or nfds != 2 * len(paths):
        raise FdFormatError(
            f"{len(paths)} object(s) with {nfds} descriptor(s): need 1..{MAX_OBJECTS}, two each"
        )
    return query, paths


def encode_answer(verdicts: Sequence[tuple[int, int | str]]) -> bytes:
    capped = [(s, v if isinstance(v, int) else v[:MESSAGE_CAP]) for s, v in verdicts]
    return json.dumps(capped, separators=(",", ":")).encode()


def decode_answer(data: bytes, count: int) -> list[tuple[int, Any]]:
    """Return ``count`` verdicts ``(status, length or message)``; refuse anything else."""
    try:
        verdicts = json.loads(data)
        out = [(int(s), v) for s, v in verdicts]
    except (ValueError, TypeError) as err:
        raise FdFormatError(f"bad answer: {err}") from None
    if len(out) != count:
        raise FdFormatError(f"answer has {len(out)} verdict(s) for {count} object(s)")
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
