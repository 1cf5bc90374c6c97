"""The transformer protocol generations: which one a definition speaks and what it may carry.

Two generations differ on the wire only where an ``fqn`` goes (docs/protocol.md): AIStore 2.x
(``2025``) sends the object path in the URL and the escaped file name in query ``etl_fqn``; the
December 2024 protocol sends the escaped file name as the URL path and nothing else. Per-request
``etl_args`` and direct put exist only in 2025.
"""

from __future__ import annotations

from airflow_ais_etl.etl.constants import IO, PROTOCOL_2024, PROTOCOL_2025, PROTOCOLS
from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["check_etl_args", "check_protocol", "effective_protocol"]


def check_protocol(value: object) -> str:
    """Return ``value`` if it names a protocol generation (``""`` means the default)."""
    if value == "" or value in PROTOCOLS:
        return str(value)
    raise ValidationError(
        f"protocol must be one of {', '.join(repr(p) for p in PROTOCOLS)} (empty: {PROTOCOL_2025!r}), "
        f"got {value!r}: use '2025' for AIStore 2.x servers (aistore[etl] webservers), '2024' for "
        "servers that read the FQN from the request path"
    )


def effective_protocol(value: str) -> str:
    """Return the generation a definition speaks: the declared one, else ``2025``."""
    return check_protocol(value) or PROTOCOL_2025


def check_etl_args(etl_args: str | None, *, protocol: str, comm_type: str, etl_name: str = "") -> str:
    """Return ``etl_args`` (``""`` when none) or refuse them where no server could receive them."""
    if not etl_args:
        return ""
    if not isinstance(etl_args, str):
        raise ValidationError(f"etl_args must be a string, got {type(etl_args).__name__}", etl_name=etl_name)
    if effective_protocol(protocol) == PROTOCOL_2024:
        raise ValidationError(
            "etl_args need protocol '2025' (query parameter etl_args); this ETL declares protocol '2024', "
            "whose servers would ignore them: re-init it with protocol '2025' or drop the arguments",
            etl_name=etl_name,
        )
    if comm_type == IO:
        raise ValidationError(
            "etl_args cannot be passed to io:// transforms (their command gets the object on stdin only): "
            "use hpush://, hpull:// or hrev://",
            etl_name=etl_name,
        )
    return etl_args
