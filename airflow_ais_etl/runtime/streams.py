"""The ``reader`` and ``writer`` handed to ``transform(reader, writer)`` when CHUNK_SIZE > 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

ReadFn = Callable[[int], bytes]


class ChunkReader:
    """Object bytes as fixed-size chunks: iterate for ``chunk_size`` pieces (last shorter).

    Also file-like: ``read(n)`` returns ``n`` bytes unless the object ends first, ``read()`` and
    ``read_all()`` return everything not yet consumed.
    """

    def __init__(self, source: ReadFn, chunk_size: int) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._source = source
        self.chunk_size = chunk_size
        self._pending = b""
        self._eof = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = self.read(self.chunk_size)
        if not chunk:
            raise StopIteration
        return chunk

    def read(self, n: int = -1) -> bytes:
        """Return ``n`` bytes (fewer only at the end); all remaining bytes if ``n`` is negative or None."""
        if n is None or n < 0:
            return self.read_all()
        parts = []
        have = 0
        if self._pending:
            take = self._pending[:n]
            self._pending = self._pending[n:]
            parts.append(take)
            have = len(take)
        while have < n and not self._eof:
            data = self._source(n - have)
            if not data:
                self._eof = True
                break
            if len(data) > n - have:  # a source may hand back more than asked
                self._pending = data[n - have :]
                data = data[: n - have]
            parts.append(data)
            have += len(data)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def read_all(self) -> bytes:
        """Return every byte not yet consumed."""
        parts = [self._pending] if self._pending else []
        self._pending = b""
        while not self._eof:
            data = self._source(1 << 20)
            if not data:
                self._eof = True
                break
            parts.append(data)
        return b"".join(parts)

    def readable(self) -> bool:
        """Say that this object can be read, like a file."""
        return True


class ResponseSink(Protocol):
    """What :class:`StreamWriter` needs from the HTTP connection."""

    def send_response(self, status: int, body: bytes | bytearray | memoryview) -> None: ...

    def start_chunked(self) -> None: ...

    def send_chunk(self, data: bytes | bytearray | memoryview) -> None: ...

    def end_chunked(self) -> None: ...


class StreamWriter:
    """Collect the transform's output and stream it as a chunked response.

    Small output is held back (up to ``threshold`` bytes) so that a transform that fails early still
    gets a clean 500, and a short result goes out with ``Content-Length``.
    """

    def __init__(self, sink: ResponseSink, threshold: int = 64 * 1024) -> None:
        self._sink = sink
        self._threshold = threshold
        self._buf = bytearray()
        self.started = False
        self.bytes_written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue ``data`` for the client; return its length."""
        try:
            view = memoryview(data)
        except TypeError:
            raise TypeError(f"writer.write() needs a bytes-like object, not {type(data).__name__}") from None
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        size = view.nbytes
        if not size:
            return 0
        self.bytes_written += size
        if not self._buf and size >= self._threshold:
            self._emit(view)
            return size
        self._buf += view
        if len(self._buf) >= self._threshold:
            self.flush()
        return size

    def flush(self) -> None:
        """Send what is queued now (this commits the response to ``200``)."""
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._emit(data)

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        if not self.started:
            self._sink.start_chunked()
            self.started = True
        self._sink.send_chunk(data)

    def finish(self) -> None:
        """Complete the response: ``Content-Length`` if nothing was streamed yet, else the last chunk."""
        if not self.started:
            data = bytes(self._buf)
            self._buf.clear()
            self._sink.send_response(200, data)
            return
        self.flush()
        self._sink.end_chunked()

    def writable(self) -> bool:
        """Say that this object can be written, like a file."""
        return True

    def close(self) -> None:
        """Do nothing: the server completes the response after the transform returns."""
