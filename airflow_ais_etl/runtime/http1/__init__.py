"""A sans-IO HTTP/1.1 parser shared by the in-pod server and the dataplane's client.

No sockets and no event loop here: callers hand in bytes and get parsed heads, body framing, body
bytes and :class:`ParseError` out, whether they read with blocking sockets (the runtime) or
asyncio (the dataplane). It lives in the runtime package because pods get only that package and
the standard library; the dataplane imports it from here.

* :mod:`.heads`: find a head's end, parse request and response heads, limits.
* :mod:`.framing`: how long a body is (``Content-Length``, chunked, until close).
* :mod:`.chunked`: decode chunked bodies pushed in pieces; frame chunks to send.
* :mod:`.responses`: the client's push parser that strings these together into events.
* :mod:`.batchwire`: the project's framing of many small objects in one request and its answer.
"""

from __future__ import annotations

from airflow_ais_etl.runtime.http1.chunked import CRLF, LAST_CHUNK, ChunkedDecoder, chunk_size_line
from airflow_ais_etl.runtime.http1.errors import ParseError
from airflow_ais_etl.runtime.http1.framing import (
    CHUNKED,
    UNTIL_CLOSE,
    request_body_length,
    response_body_length,
)
from airflow_ais_etl.runtime.http1.heads import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    MAX_LINE_BYTES,
    RequestHead,
    ResponseHead,
    find_head_end,
    parse_request_head,
    parse_response_head,
)
from airflow_ais_etl.runtime.http1.responses import END, EndOfMessage, ResponseParser

__all__ = [
    "CHUNKED",
    "CRLF",
    "END",
    "LAST_CHUNK",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "MAX_LINE_BYTES",
    "UNTIL_CLOSE",
    "ChunkedDecoder",
    "EndOfMessage",
    "ParseError",
    "RequestHead",
    "ResponseHead",
    "ResponseParser",
    "chunk_size_line",
    "find_head_end",
    "parse_request_head",
    "parse_response_head",
    "request_body_length",
    "response_body_length",
]
