"""Reading a source and writing a result through their open descriptors (the file transport's pod side)."""

from __future__ import annotations

import os
from stat import S_ISREG

__all__ = ["FileSink", "SinkError", "read_whole"]

_CHUNK = 1 << 20


class SinkError(Exception):
    """Writing the result failed (e.g. the file system is full): the object fails, never the transform's fault."""


def read_whole(fd: int, size: int | None = None) -> bytes:
    """Return every byte of the file behind ``fd`` with as few ``read`` calls as its size allows.

    ``size``: the file's size as its opener found it (a regular file), saving an ``fstat``.
    """
    if size is None:
        st = os.fstat(fd)
        size = st.st_size if S_ISREG(st.st_mode) else 0
    first = os.read(fd, size + 1) if size else b""  # one byte more: a file that grew is read to its end
    if size and len(first) <= size:
        return first
    parts = [first] if first else []
    while piece := os.read(fd, _CHUNK):
        parts.append(piece)
    return b"".join(parts)


class FileSink:
    """Write everything to ``fd``: what ``StreamWriter`` sends to a connection, sent to a file instead."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        size = view.nbytes
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as err:
            raise SinkError(str(err)) from err
        self.written += size

    def send_response(self, status: int, body: bytes | bytearray | memoryview) -> None:
        self.write(body)

    def start_chunked(self) -> None:
        """Nothing to announce: a file has no framing."""

    def send_chunk(self, data: bytes | bytearray | memoryview) -> None:
        self.write(data)

    def end_chunked(self) -> None:
        """Nothing to close: the caller closes the descriptor."""
