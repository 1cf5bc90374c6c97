"""Who may talk to the server: loopback by default, a bearer token when one is configured.

The SDK sends ``Authorization: Bearer <token>`` (``Client(url, token=...)``). Comparing in constant
time keeps the token from leaking through response timing. A server reachable from other machines
without a token would hand every bucket under the root to anyone, so that is refused at start.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import stat
from pathlib import Path

from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["authorized", "check_listen", "is_loopback", "parse_listen", "read_token"]


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6) into host and port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValidationError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:51080")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise ValidationError(f"--listen {listen!r}: the host is missing; use 127.0.0.1:PORT")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names this machine's loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, token: str) -> None:
    """Refuse a non-loopback address without a token (anyone on the network could use the buckets)."""
    if not is_loopback(host) and not token:
        raise ValidationError(
            f"refusing to listen on {host} without a token: anyone who reaches it could read and "
            "write every bucket under --buckets. Pass --token-file FILE (a private file holding the "
            "token clients send as Authorization: Bearer), or listen on 127.0.0.1"
        )


def read_token(path: str) -> str:
    """Read the token from a file only its owner may read (a readable token is a shared password)."""
    file = Path(path)
    try:
        st = file.stat()
        text = file.read_text().strip()
    except OSError as exc:
        raise ValidationError(f"--token-file {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or st.st_uid != os.getuid():
        raise ValidationError(
            f"--token-file {path} may be read by other users (mode {stat.filemode(st.st_mode)}); "
            f"make it yours and private: chmod 600 {path}"
        )
    if not text:
        raise ValidationError(f"--token-file {path} is empty: write the token into it")
    return text


def authorized(header: str | None, token: str) -> bool:
    """Tell whether an ``Authorization`` header carries ``token`` (always true without a token)."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
