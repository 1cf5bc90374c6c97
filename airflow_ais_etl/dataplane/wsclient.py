"""A minimal WebSocket client (RFC 6455) on asyncio streams, for the ``ws://`` comm type.

Only what AIS's transformer servers need: the HTTP upgrade, masked client frames, fragmented and
control frames from the server (pings answered, close honoured). No extensions, no compression.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct
from urllib.parse import urlsplit

__all__ = ["WebSocket", "WebSocketError", "connect"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_MAX_MESSAGE = 8 << 30


class WebSocketError(Exception):
    """The handshake failed, the server broke the framing, or the connection closed."""


class WebSocket:
    """One client connection: :meth:`send` and :meth:`receive` whole messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False

    async def send(self, data: bytes, *, text: bool = False) -> None:
        """Send one message (a single frame, masked as clients must)."""
        opcode = _TEXT if text else _BINARY
        self.writer.write(_frame_head(opcode, len(data)))
        mask = os.urandom(4)
        self.writer.write(mask)
        self.writer.write(_masked(data, mask))
        await self.writer.drain()

    async def receive(self) -> tuple[bool, bytes]:
        """Return the next data message as ``(is_text, payload)``; answer pings on the way."""
        parts: list[bytes] = []
        kind: int | None = None
        total = 0
        while True:
            fin, opcode, payload = await self._frame()
            if opcode == _PING:
                await self._control(_PONG, payload)
                continue
            if opcode == _PONG:
                continue
            if opcode == _CLOSE:
                self.closed = True
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise WebSocketError(
                    f"server closed the connection ({code}: {payload[2:].decode(errors='replace')})"
                )
            if opcode in (_TEXT, _BINARY):
                if kind is not None:
                    raise WebSocketError("new message before the previous one ended")
                kind = opcode
            elif opcode != _CONT or kind is None:
                raise WebSocketError(f"unexpected frame opcode {opcode}")
            parts.append(payload)
            total += len(payload)
            if total > _MAX_MESSAGE:
                raise WebSocketError("message too large")
            if fin:
                return kind == _TEXT, b"".join(parts)

    async def _frame(self) -> tuple[bool, int, bytes]:
        try:
            head = await self.reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            mask = await self.reader.readexactly(4) if head[1] & 0x80 else b""
            payload = await self.reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            self.closed = True
            raise WebSocketError("connection closed in the middle of a frame") from exc
        return bool(head[0] & 0x80), head[0] & 0x0F, _masked(payload, mask) if mask else payload

    async def _control(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        self.writer.write(_frame_head(opcode, len(payload)) + mask + _masked(payload, mask))
        await self.writer.drain()

    async def close(self) -> None:
        """Say goodbye (best effort) and close the socket."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError, RuntimeError):
                await self._control(_CLOSE, struct.pack("!H", 1000))
        self.writer.close()
        with contextlib.suppress(OSError, RuntimeError):
            await self.writer.wait_closed()


def _frame_head(opcode: int, length: int) -> bytes:
    first = 0x80 | opcode
    if length < 126:
        return bytes([first, 0x80 | length])
    if length < 1 << 16:
        return bytes([first, 0x80 | 126]) + struct.pack("!H", length)
    return bytes([first, 0x80 | 127]) + struct.pack("!Q", length)


def _masked(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeating 4-byte ``mask`` (fast: one big-integer XOR)."""
    if not data:
        return b""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


async def connect(url: str, *, timeout: float | None = 30.0) -> WebSocket:
    """Open a WebSocket to ``url`` (``ws://host:port/path``)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 20), timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise WebSocketError(f"no WebSocket handshake answer from {parts.netloc}") from exc
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID, usedforsecurity=False).digest()).decode()
    if not lines[0].startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
        writer.close()
        raise WebSocketError(f"{parts.netloc} refused the WebSocket upgrade: {lines[0]!r}")
    return WebSocket(reader, writer)
