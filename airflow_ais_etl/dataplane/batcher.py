"""Client side of batched small objects: concurrent pushes to one pod travel as one request.

Why: for a 4 KiB object the round trip (a request, a ``send``, a wake-up of the pod, a response)
costs several times the object's own work. The workers of a job push objects concurrently; those
that wait for the same pod in the same turn of the event loop are sent together in one ``PUT``
(``runtime.http1.batchwire``) and answered together, each object with its own verdict.

Only pods that advertise the format in their ``/health`` answer get batches (asked once per pod
and job); AIS's servers and foreign images keep one request per object. A batch that fails as a
whole (timeout, lost connection, an error status, a bad answer) sends each of its objects again
on its own, so every object ends exactly as it would have without batching: with its own result,
its own error, its own ``obj_timeout``. Slow transforms gain nothing from batches and lose the
pod's parallelism: objects the pod left undone (its batch time budget ran out, ``NOT_RUN``) and
failed batches make the job send that pod one object per request for :data:`SLOW_SPELL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_ais_etl.dataplane.httpclient import HTTPClientError
from airflow_ais_etl.dataplane.podaccess import access_headers
from airflow_ais_etl.dataplane.podcaps import PodCaps
from airflow_ais_etl.dataplane.podrequest import join_url
from airflow_ais_etl.etl.constants import ARG_BYTES, QPARAM_ETL_ARGS
from airflow_ais_etl.etl.errors import TransformError
from airflow_ais_etl.etl.naming import callback_path, hpush_path, uname
from airflow_ais_etl.runtime.http1.batchwire import (
    ALONE,
    BATCH_HEADER,
    BATCH_VERSION,
    DELIVERED,
    NOT_RUN,
    BatchFormatError,
    decode_results,
    encode_items,
)

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint
    from airflow_ais_etl.dataplane.comm import PodClient

__all__ = [
    "ALONE_HEADER",
    "BATCH_BYTES",
    "OBJECTS_IN_FLIGHT",
    "BATCH_OBJECT",
    "BATCH_OBJECTS",
    "SEND_ALONE",
    "Batcher",
    "Delivered",
    "object_error",
]

BATCH_OBJECT = 64 << 10
"""Objects up to this size may travel in a batch; larger ones get a request of their own."""
BATCH_OBJECTS = 64
BATCH_BYTES = 192 << 10
"""A batch's most objects and bytes: small enough for the pod to answer it in its event loop."""
OBJECTS_IN_FLIGHT = BATCH_OBJECTS
"""Objects a batching job keeps in flight per pod (or ``num_workers``, if more), so batches fill up;
requests stay at most ``num_workers`` per pod."""
PULL_BATCHES_IN_FLIGHT = 4
"""Pull batches wait on the target twice (fetch, direct put): a pod gets this many times the objects
in flight, so its next batches are under way while one waits."""
SEND_ALONE = object()
"""The verdict for an object whose batch failed as a whole: send it again on its own."""
ALONE_HEADER = f"{BATCH_HEADER}: {ALONE}\r\n"
"""The header line of such an object's own request (the pod runs it in a thread)."""
SLOW_SPELL_SECONDS = 2.0
_MESSAGE_CAP = 2048

log = logging.getLogger(__name__)

_Item = tuple[str, str, bytes, "asyncio.Future[object]"]
"""An object waiting for its batch: name, path, data, and the future of its verdict."""


class Delivered(int):
    """The verdict of an object of a pull batch that the pod delivered by direct put: the length it put."""


class _Lane:
    """Objects waiting for one pod, and whether a launch is already scheduled."""

    __slots__ = ("items", "scheduled")

    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.scheduled = False


class Batcher:
    """Coalesce the small pushes of one job to each pod into batch requests.

    :param client: the job's pod client (its pool, its ``request_timeout`` for a whole batch)
    :param bucket_ref: the source bucket as the pods know it (the object paths use its name)
    :param etl_args: the per-request arguments of every object
    :param requests_per_pod: the job's ``num_workers``: the engine runs :attr:`objects_per_worker`
        times as many workers so that batches fill up, and objects sent one per request take one of
        this many request slots per pod, as does each batch: a pod never has more requests in flight
    :param pull: send pull batches (hpull): each object's data is its ``Ais-Node-Url`` (or empty),
        the pod fetches the object itself and answers :class:`Delivered` for a direct put
    """

    def __init__(
        self,
        client: PodClient,
        bucket_ref: BucketRef,
        etl_args: str = "",
        *,
        requests_per_pod: int = 8,
        caps: PodCaps | None = None,
        pull: bool = False,
    ) -> None:
        self.client = client
        self.caps = caps or PodCaps(client)
        """What each pod said in its ``/health`` answer (shared with the file transport: asked once)."""
        self.pull = pull
        self.requests_per_pod = requests_per_pod
        self._slots: dict[str, asyncio.Semaphore] = {}
        self.bucket = bucket_ref.name
        self.bucket_ref = bucket_ref
        self.query = "?" + urlencode({QPARAM_ETL_ARGS: etl_args}) if etl_args else ""
        self.supported: dict[str, bool] = {}
        """Per pod URL: whether it accepts batches (absent: not asked yet)."""
        self._singles_until: dict[str, float] = {}
        """Per pod URL: send it one object per request until then (loop time; its transform is slow)."""
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def accepts(self, endpoint: PodEndpoint) -> bool:
        """Tell whether the pod at ``endpoint`` accepts batches (asked once, then remembered)."""
        known = self.supported.get(endpoint.url)
        if known is None:
            said = (await self.caps.headers(endpoint)).get(BATCH_HEADER, "")
            known = self.supported[endpoint.url] = said.strip() == BATCH_VERSION
        return known and (not self._singles_until or self._batches_again(endpoint.url))

    @property
    def objects_per_worker(self) -> int:
        """How many objects per ``num_workers`` slot the engine keeps in flight (:data:`OBJECTS_IN_FLIGHT` per pod)."""
        return max(
            1, OBJECTS_IN_FLIGHT * (PULL_BATCHES_IN_FLIGHT if self.pull else 1) // self.requests_per_pod
        )

    def request_slot(self, endpoint: PodEndpoint) -> asyncio.Semaphore:
        """Hold this while a request (a batch, or an object of its own) is out to ``endpoint``.

        A pod never has more than ``num_workers`` requests in flight, batching or not.
        """
        slot = self._slots.get(endpoint.url)
        if slot is None:
            slot = self._slots[endpoint.url] = asyncio.Semaphore(self.requests_per_pod)
        return slot

    def _batches_again(self, url: str) -> bool:
        until = self._singles_until.get(url)
        if until is None:
            return True
        if asyncio.get_running_loop().time() < until:
            return False
        del self._singles_until[url]
        return True

    def _singles_for_a_while(self, url: str) -> None:
        self._singles_until[url] = asyncio.get_running_loop().time() + SLOW_SPELL_SECONDS

    def submit(self, endpoint: PodEndpoint, name: str, data: bytes) -> asyncio.Future[object]:
        """Queue one object for ``endpoint``; the future gives its result bytes, or :data:`SEND_ALONE`.

        A per-object failure is the future's :class:`TransformError`. Objects queued in the same
        turn of the event loop leave together.
        """
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(endpoint.url)
        if lane is None:
            lane = self._lanes[endpoint.url] = _Lane()
        fut: asyncio.Future[object] = loop.create_future()
        ref = self.bucket_ref
        path = callback_path(uname(ref.provider, ref.name, name)) if self.pull else f"/{self.bucket}/{name}"
        lane.items.append((name, path, data, fut))
        if not lane.scheduled:
            lane.scheduled = True
            loop.call_soon(self._launch, endpoint, lane)
        return fut

    def _launch(self, endpoint: PodEndpoint, lane: _Lane) -> None:
        """Send what waits for ``endpoint`` as batches of at most BATCH_OBJECTS / BATCH_BYTES."""
        lane.scheduled = False
        items, lane.items = lane.items, []
        items = [item for item in items if not item[3].done()]  # drop the cancelled
        start = 0
        while start < len(items):
            end, size = start, 0
            while end < len(items) and end - start < BATCH_OBJECTS:
                size += len(items[end][2])
                if size > BATCH_BYTES and end > start:
                    break
                end += 1
            task = asyncio.ensure_future(self._send(endpoint, items[start:end]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            start = end

    async def _send(self, endpoint: PodEndpoint, items: list[_Item]) -> None:
        try:
            async with self.request_slot(endpoint):
                verdicts = await self._exchange(endpoint, items)
        except BaseException:
            verdicts = [SEND_ALONE] * len(items)
            raise
        finally:
            for (_, _, _, fut), verdict in zip(items, verdicts, strict=True):
                if fut.done():
                    continue
                if isinstance(verdict, BaseException):
                    fut.set_exception(verdict)
                else:
                    fut.set_result(verdict)

    async def _exchange(self, endpoint: PodEndpoint, items: list[_Item]) -> list[object]:
        """Send one batch; return each object's verdict (result, error, or SEND_ALONE)."""
        body = encode_items([(path, data) for _, path, data, _ in items])
        headers = (
            "Content-Type: application/octet-stream\r\n"
            f"{BATCH_HEADER}: {len(items)}\r\n" + access_headers(endpoint, ARG_BYTES, self.bucket_ref)
        )
        url = join_url(endpoint.url, "/" if self.pull else hpush_path(self.bucket, "")) + self.query
        try:
            resp = await self.client.http.request(
                "GET" if self.pull else "PUT",
                url,
                body=body,
                headers=headers,
                timeout=self.client.request_timeout,
            )
            answer = await resp.read()
            if resp.status != 200:
                raise BatchFormatError(f"answered {resp.status}")
            results = decode_results(answer, len(items))
        except (HTTPClientError, OSError, asyncio.TimeoutError, BatchFormatError) as err:
            log.debug("batch of %d to %s failed (%r): sending alone", len(items), url, err)
            self._singles_for_a_while(endpoint.url)
            return [SEND_ALONE] * len(items)
        verdicts: list[object] = []
        for (name, _, _, _), (status, payload) in zip(items, results, strict=True):
            if status == 200:
                verdicts.append(payload)
            elif status == DELIVERED and self.pull and payload.isdigit():
                verdicts.append(Delivered(int(payload)))
            elif status == NOT_RUN:
                verdicts.append(SEND_ALONE)
                self._singles_for_a_while(endpoint.url)
            else:
                verdicts.append(object_error(endpoint, name, status, payload))
        return verdicts

    async def aclose(self) -> None:
        """Cancel batches still in flight (an aborted job) and the probes."""
        await self.caps.aclose()
        pending: list[asyncio.Future[Any]] = [*self._tasks]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task


def object_error(endpoint: PodEndpoint, name: str, status: int, payload: bytes) -> TransformError:
    """The error of one object, worded as a request of its own would have been (dataplane.comm)."""
    message = payload[:_MESSAGE_CAP].decode("utf-8", errors="replace").strip()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    reason = f"transform of {name!r} failed: pod answered {status} {phrase}".rstrip()
    if message:
        reason += f": {message}"
    return TransformError(
        reason, object_name=name, status=status, target=endpoint.target_id, pod_name=endpoint.pod_name
    )
