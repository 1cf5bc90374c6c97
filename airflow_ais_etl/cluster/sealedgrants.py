"""Direct-put grants that need no shared file: the job signs them, the gateway checks the signature.

On Kubernetes the Airflow worker that runs a job and the gateway sidecars of the ETL's pods share no
file the worker may write, and the sidecars may not call the Kubernetes API. So a job grants its
destination with a token it signs with the ETL's *put key*: a random key kept in the ETL's gateway
Secret, which reaches the gateway sidecar as ``$AIS_ETL_PUT_KEY`` and no other container (the
transformer knows the callback secret, not this key, so it cannot grant itself anything).

A token names one bucket (the gateway's name and its URL), the job's grant id, an expiry and the
umask for what the gateway creates there: ``s1.<payload>.<mac>``, both base64url, the payload
compact JSON ``{"b": bucket, "j": grant id, "m": umask or null, "u": url, "x": unix seconds}``, the
MAC HMAC-SHA256 over the payload. The gateway accepts a PUT into that bucket while the token is
unexpired when the PUT begins and its grant is not revoked when the object is named. A job renews
its token every :data:`RENEW_SECONDS` (same grant id) and, when it ends, revokes the grant at every
gateway it used (``DELETE /v1/etl/_grants/<grant id>`` with a proof only the key can make); the
revoke returns once no object is being named there, so nothing arrives after it. A gateway the job
cannot reach refuses its tokens once they expire, :data:`LIFETIME_SECONDS` after each was made.
Clocks of workers and nodes must agree to well within that.

Standard library only: the gateway imports it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from airflow_ais_etl.cluster.directput import PutTarget, token_of, umask_of
from airflow_ais_etl.cluster.gatewaypaths import Refusal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "GRANTS_PREFIX",
    "LIFETIME_SECONDS",
    "PUT_KEY_ENV",
    "RENEW_SECONDS",
    "REVOKE_HEADER",
    "SealedGrants",
    "SealedTokens",
    "TokenRefused",
    "open_token",
    "read_token",
    "revocation_proof",
    "seal",
]

PUT_KEY_ENV = "AIS_ETL_PUT_KEY"
LIFETIME_SECONDS = 300
"""How long a token grants writes after it was made."""
RENEW_SECONDS = 60.0
"""How often a job makes a new token (pods get the newest with each object)."""
_PREFIX = "s1."
GRANTS_PREFIX = "/v1/etl/_grants/"
"""Where a job revokes its grant at a gateway: ``DELETE <prefix><grant id>``."""
REVOKE_HEADER = "X-AIS-ETL-Revoke"
"""The revocation's proof: HMAC-SHA256 of ``revoke.<grant id>`` under the put key."""
REVOKE_WAIT_SECONDS = 30.0
"""How long a revoke waits at a gateway for objects being named there."""
log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def seal(
    key: bytes, bucket: str, url: str, expires: int, umask: int | None = None, grant_id: str = ""
) -> str:
    """Return a token that lets pods write into ``bucket`` (at ``url``) until ``expires`` (unix seconds).

    :param umask: the modes the gateway gives what it creates there (default: its own umask)
    :param grant_id: the job's grant, which revoking ends (every token of a job carries the same)
    """
    if not key:
        raise ValueError("a put key must not be empty")
    fields = {"b": bucket, "j": grant_id, "u": url, "x": int(expires), "m": umask}
    body = json.dumps(fields, separators=(",", ":"), sort_keys=True)
    payload = _b64(body.encode())
    return f"{_PREFIX}{payload}.{_mac(key, payload)}"


class TokenRefused(Exception):
    """A token that grants nothing here; the text says why."""


def revocation_proof(key: bytes, grant_id: str) -> str:
    """The proof that a revocation of ``grant_id`` comes from who holds the put key."""
    return _mac(key, f"revoke.{grant_id}")


def open_token(key: bytes, token: str, bucket: str, now: float | None) -> PutTarget:
    """Return where the bucket a token grants is (URL, umask); see :func:`read_token`."""
    return read_token(key, token, bucket, now)[0]


def read_token(key: bytes, token: str, bucket: str, now: float | None) -> tuple[PutTarget, str]:
    """Return where the bucket a token grants is (URL, umask), and the token's grant id.

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
    return PutTarget(str(data["u"]), umask_of(data.get("m"))), str(data.get("j") or "")


class SealedGrants:
    """The gateway's side: which buckets a PUT's token opens, and which grants jobs revoked."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self._clock = clock
        self._revoked: dict[str, float] = {}
        """Revoked grant ids, each kept until every token of it has expired anyway."""
        self._naming = 0
        """Objects being named now (between their last check and their rename)."""
        self._cond = threading.Condition()

    def _open(self, query: str, bucket: str, now: float | None, status: int) -> PutTarget:
        try:
            target, grant_id = read_token(self.key, token_of(query), bucket, now)
        except TokenRefused as err:
            raise Refusal(status, f"pods may not write into bucket {bucket!r}: {err}") from None
        if grant_id and grant_id in self._revoked:
            raise Refusal(status, f"pods may not write into bucket {bucket!r}: the job ended (grant revoked)")
        return target

    def url_of(self, query: str, bucket: str) -> PutTarget:
        """The URL of ``bucket`` when the request's token (query ``uuid``) grants writes into it now."""
        return self._open(query, bucket, self._clock(), 403)

    def at_commit(self, query: str, bucket: str) -> PutTarget:
        """The same for a PUT whose token was valid when it began (a long upload may outlive the
        token), unless its job revoked the grant meanwhile."""
        return self._open(query, bucket, None, 409)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Count the objects named inside: a revoke returns only once none is."""
        with self._cond:
            self._naming += 1
        try:
            yield
        finally:
            with self._cond:
                self._naming -= 1
                self._cond.notify_all()

    def revoke(self, grant_id: str, proof: str) -> None:
        """End grant ``grant_id`` here: later checks refuse it; return once no object is being named.

        :raises Refusal: the proof was not made with this gateway's put key
        """
        good = revocation_proof(self.key, grant_id) if grant_id else "-"
        if not grant_id or not proof.isascii() or not hmac.compare_digest(proof.encode(), good.encode()):
            raise Refusal(403, "the revocation was not made with this ETL's put key")
        now = self._clock()
        with self._cond:
            self._revoked = {g: until for g, until in self._revoked.items() if until > now}
            self._revoked[grant_id] = now + LIFETIME_SECONDS + RENEW_SECONDS
            self._cond.wait_for(lambda: self._naming == 0, REVOKE_WAIT_SECONDS)


def send_revocation(origin: str, key: bytes, grant_id: str, timeout: float = 5.0) -> None:
    """Revoke ``grant_id`` at the gateway at ``origin`` (``http://host:port``).

    :raises OSError: the gateway could not be reached or refused
    """
    parts = urlsplit(origin)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request(
            "DELETE", GRANTS_PREFIX + grant_id, headers={REVOKE_HEADER: revocation_proof(key, grant_id)}
        )
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace").strip()
    except http.client.HTTPException as err:
        raise OSError(f"{origin}: {err}") from err
    finally:
        conn.close()
    if resp.status not in (200, 204):
        raise OSError(f"{origin} answered {resp.status}: {text}")


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
        self.grant_id = secrets.token_urlsafe(12)
        self._made = 0.0
        self._token = ""
        self.current()

    def current(self) -> str:
        now = self._clock()
        if not self._token or now - self._made >= RENEW_SECONDS:
            expires = int(now) + LIFETIME_SECONDS
            self._token = seal(self._key, self._bucket, self._url, expires, self._umask, self.grant_id)
            self._made = now
        return self._token

    def revoke(self, gateways: Iterable[str]) -> None:
        """Revoke the grant at every gateway the job used; one that cannot be reached lets its
        tokens expire (logged)."""
        for origin in gateways:
            try:
                send_revocation(origin, self._key, self.grant_id)
            except OSError as err:
                log.warning(
                    "could not revoke the direct-put grant of this job at %s (%s): pods can still deliver "
                    "there until its tokens expire, within %d s",
                    origin,
                    err,
                    LIFETIME_SECONDS,
                )
