"""Who may use this pod, and which files an ``fqn`` request may open.

The engine sends every request with the ETL's token (``X-AIS-ETL-Token``; the pod gets it from
``AIS_ETL_TOKEN``), so another local user who finds the pod's address gets a 401 and nothing else.
``/health`` stays open: kubelets and readiness probes carry no token, and it answers no data.
A pod started without a token (an older engine, a hand-run server) checks nothing, as AIS's do.

With ``arg_type fqn`` the engine also names the roots the current job was granted
(``X-AIS-ETL-FQN-Root``, percent-encoded, one header value per root joined by ``,``): the file is
opened first, then the path the kernel actually opened (``/proc/self/fd``, so symlinks and ``..``
are resolved and a swap between check and open changes nothing) must lie under one of them.
"""

from __future__ import annotations

import hmac
import os
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote

from airflow_ais_etl.etl.constants import FQN_ROOT_HEADER, TOKEN_ENV, TOKEN_HEADER

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["AccessRefused", "Gate", "open_granted"]


class AccessRefused(Exception):
    """A request this pod does not serve: an HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Gate:
    """The pod's check of the per-ETL token (constant-time), read once from the environment."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Gate:
        return cls(env.get(TOKEN_ENV, ""))

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise :class:`AccessRefused` unless the request carries this ETL's token."""
        if not self._token:
            return
        given = headers.get(TOKEN_HEADER.lower())
        if given is None:
            raise AccessRefused(401, f"missing {TOKEN_HEADER} header: this pod serves only its ETL's engine")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self._token):
            raise AccessRefused(403, f"wrong {TOKEN_HEADER}: this pod serves only its ETL's engine")


def granted_roots(headers: Mapping[str, str]) -> list[str] | None:
    """Return the roots the request names (``None``: the header is absent)."""
    raw = headers.get(FQN_ROOT_HEADER.lower())
    if raw is None:
        return None
    return [os.path.realpath(unquote(part.strip())) for part in raw.split(",") if part.strip()]


def open_granted(fqn: str, headers: Mapping[str, str], *, required: bool) -> IO[bytes]:
    """Open ``fqn`` for reading when it lies under a granted root; raise :class:`AccessRefused` else.

    :param required: refuse a request that names no roots (the pod has a token, so the engine
        always names them; without a token the pod behaves as AIS's and opens any path)
    """
    roots = granted_roots(headers)
    if roots is None and not required:
        return open(fqn, "rb")
    if not roots:
        raise AccessRefused(403, f"fqn {fqn!r} refused: the request names no granted bucket")
    f = open(fqn, "rb")
    try:
        real = _opened_path(f, fqn)
        if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
            raise AccessRefused(
                403,
                f"fqn {fqn!r} refused: it is not inside a bucket granted to this job ({', '.join(roots)})",
            )
    except BaseException:
        f.close()
        raise
    return f


def _opened_path(f: IO[bytes], fqn: str) -> str:
    """Return the real path of the open file (what the kernel opened, not what was asked)."""
    try:
        return os.readlink(f"/proc/self/fd/{f.fileno()}")
    except OSError:
        return os.path.realpath(fqn)
