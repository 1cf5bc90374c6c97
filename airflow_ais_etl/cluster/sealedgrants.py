"""Direct-put grants that need no shared file: the job signs them, the gateway checks the signature.

On Kubernetes the Airflow worker that runs a job and the gateway sidecars of the ETL's pods share no
file the worker may write, and the sidecars may not call the Kubernetes API. So a job grants its
destination with a token it signs with the ETL's *put key*: a random key kept in the ETL's gateway
Secret, which reaches the gateway sidecar as ``$AIS_ETL_PUT_KEY`` and no other container (the
transformer knows the callback secret, not this key, so it cannot grant itself anything).

A token names one bucket (the gateway's name and its URL), an expiry and the umask for what the
gateway creates there: ``s1.<payload>.<mac>``, both base64url, the payload compact JSON
``{"b": bucket, "m": umask or null, "u": url, "x": unix seconds}``, the MAC
HMAC-SHA256 over the payload. The gateway accepts a PUT into that bucket while the token is
unexpired when the PUT begins. A token cannot be revoked: a job renews its token every
:data:`RENEW_SECONDS`, so one a transformer kept stops working at most :data:`LIFETIME_SECONDS`
after the job stopped sending it. Clocks of workers and nodes must agree to well within that.

Standard library only: the gateway imports it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from airflow_ais_etl.cluster.directput import PutTarget, umask_of
from airflow_ais_etl.cluster.gatewaypaths import Refusal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "LIFETIME_SECONDS",
    "PUT_KEY_ENV",
    "RENEW_SECONDS",
    "SealedGrants",
    "SealedTokens",
    "TokenRefused",
    "open_token",
    "seal",
]

PUT_KEY_ENV = "AIS_ETL_PUT_KEY"
LIFETIME_SECONDS = 300
"""How long a token grants writes after it was made."""
RENEW_SECONDS = 60.0
"""How often a job makes a new token (pods get the newest with each object)."""
_PREFIX = "s1."
_TOKEN_PARAM = "uuid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def seal(key: bytes, bucket: str, url: str, expires: int, umask: int | None = None) -> str:
    """Return a token that lets pods write into ``bucket`` (at ``url``) until ``expires`` (unix seconds).

    :param umask: the modes the gateway gives what it creates there (default: its own umask)
    """
    if not key:
        raise ValueError("a put key must not be empty")
    fields = {"b": bucket, "u": url, "x": int(expires), "m": umask}
    body = json.dumps(fields, separators=(",", ":"), sort_keys=True)
    payload = _b64(body.encode())
    return f"{_PREFIX}{payload}.{_mac(key, payload)}"


class TokenRefused(Exception):
    """A token that grants nothing here; the text says why."""


def open_token(key: bytes, token: str, bucket: str, now: float | None) -> PutTarget:
    """Return where the bucket a token grants is (URL, umask).

    :param now: the time to check the expiry against; ``None`` skips that check (the commit of a PUT
        whose token was checked when it began)
    :raises TokenRefused: the token is forged, for another bucket, or expired
    """
    if not token:
        raise TokenRefused("the request carries no grant (query uuid)")
    payload, _, mac = token[len(_PREFIX) :].partition(".")
    signed = token.startswith(_PREFIX) and token.isascii() and bool(key) and bool(payload)
    if not signed or not hmac.compare_digest(mac.encode(), _mac(key, payload).encode()):
        raise TokenRefused("the grant was not made with this ETL's put key")
    try:
        data = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        raise TokenRefused("the grant is not readable") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("x"), int):
        raise TokenRefused("the grant is not readable")
    if data.get("b") != bucket:
        raise TokenRefused(f"the grant is for bucket {data.get('b')!r}, not {bucket!r}")
    if now is not None and now >= data["x"]:
        raise TokenRefused(
            f"the grant expired {now - data['x']:.0f} s ago by this node's clock: the job ended, or the "
            "clocks of the Airflow worker and this node differ by minutes"
        )
    return PutTarget(str(data["u"]), umask_of(data.get("m")))


def _token_of(query: str) -> str:
    return next((v for k, v in parse_qsl(query) if k == _TOKEN_PARAM), "")


class SealedGrants:
    """The gateway's side: which buckets a PUT's token opens (no state, no file)."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self._clock = clock

    def url_of(self, query: str, bucket: str) -> PutTarget:
        """The URL of ``bucket`` when the request's token (query ``uuid``) grants writes into it now."""
        try:
            return open_token(self.key, _token_of(query), bucket, self._clock())
        except TokenRefused as err:
            raise Refusal(403, f"pods may not write into bucket {bucket!r}: {err}") from None

    def at_commit(self, query: str, bucket: str) -> PutTarget:
        """The same for a PUT whose token was valid when it began: a long upload may outlive it."""
        try:
            return open_token(self.key, _token_of(query), bucket, None)
        except TokenRefused as err:
            raise Refusal(409, f"pods may not write into bucket {bucket!r}: {err}") from None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Nothing to hold: a sealed grant changes only by expiring."""
        yield


class SealedTokens:
    """The job's side: the current token for one destination, renewed every :data:`RENEW_SECONDS`."""

    def __init__(
        self,
        key: bytes,
        bucket: str,
        url: str,
        umask: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._bucket = bucket
        self._url = url
        self._umask = umask
        self._clock = clock
        self._made = 0.0
        self._token = ""
        self.current()

    def current(self) -> str:
        now = self._clock()
        if not self._token or now - self._made >= RENEW_SECONDS:
            self._token = seal(self._key, self._bucket, self._url, int(now) + LIFETIME_SECONDS, self._umask)
            self._made = now
        return self._token

    def revoke(self) -> None:
        """Nothing to undo: tokens already given out expire on their own."""
