"""Constants of the ETL protocol: comm types, arg types and limits.

Standard library only (nothing at all is imported), so the in-pod runtime shares these values: the
runtime image ships this module next to ``airflow_ais_etl/runtime/``.
"""

from __future__ import annotations

__all__ = [
    "ALLOWED_ARGS",
    "ARG_BYTES",
    "ARG_FQN",
    "ARG_TYPES",
    "ARG_URL",
    "COMM_TYPES",
    "DEFAULT_TIMEOUT",
    "HPULL",
    "HPUSH",
    "HREV",
    "IO",
    "MAX_CHUNK_SIZE",
    "MAX_ENV_STRING",
    "MAX_NAME_LEN",
    "MIN_NAME_LEN",
    "PROTOCOLS",
    "PROTOCOL_2024",
    "PROTOCOL_2025",
    "WS",
]

HPUSH = "hpush://"
HPULL = "hpull://"
HREV = "hrev://"
IO = "io://"
COMM_TYPES = (HPUSH, HPULL, HREV, IO)

ARG_BYTES = ""
ARG_URL = "url"
ARG_FQN = "fqn"
ARG_TYPES = (ARG_BYTES, ARG_URL, ARG_FQN)

ALLOWED_ARGS: dict[str, tuple[str, ...]] = {
    HPUSH: (ARG_BYTES, ARG_FQN),
    HPULL: (ARG_BYTES, ARG_URL, ARG_FQN),
    HREV: (ARG_BYTES,),
    IO: (ARG_BYTES,),
}
"""The argument types each comm type can carry (ais-etl-semantics §1.4)."""

DEFAULT_TIMEOUT = 45.0
"""Seconds each target waits for its pod to become Ready when the message says 0."""

MAX_CHUNK_SIZE = 1 << 20

MIN_NAME_LEN = 6
MAX_NAME_LEN = 32

MAX_ENV_STRING = 131_072
"""Linux limit on one ``NAME=value`` environment string (including the terminating NUL)."""

TOKEN_ENV = "AIS_ETL_TOKEN"
"""Environment variable that hands a pod its ETL's token (the project's runtime checks it)."""
TOKEN_HEADER = "X-AIS-ETL-Token"
"""Header carrying the ETL's token on every request the engine sends to a pod."""
FQN_ROOT_HEADER = "X-AIS-ETL-FQN-Root"
"""Header naming the (percent-encoded, comma-separated) roots an ``fqn`` request may read under."""

WS = "ws://"
"""AIS 2.x WebSocket comm type (init-spec pods whose server speaks it, e.g. AIS's FastAPI server).

Not in :data:`COMM_TYPES`: the project's runtime does not serve it."""

PROTOCOL_2025 = "2025"
"""AIStore 2.x transformer protocol: the FQN in query ``etl_fqn``, ``etl_args``, direct put (docs/protocol.md)."""
PROTOCOL_2024 = "2024"
"""The December 2024 protocol: the FQN is the escaped request path, the body is empty."""
PROTOCOLS = (PROTOCOL_2025, PROTOCOL_2024)
QPARAM_ETL_FQN = "etl_fqn"
QPARAM_ETL_ARGS = "etl_args"
HDR_NODE_URL = "Ais-Node-Url"
"""Direct put: where the pod PUTs its result (AIStore ``apc.HdrNodeURL``)."""
HDR_DIRECT_PUT_LENGTH = "Ais-Direct-Put-Length"
"""The pod's answer to a delivered direct put (status 204): how many bytes it delivered."""
