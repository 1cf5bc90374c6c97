"""What each pod says it can do, from the headers of its ``/health`` answer: asked once per pod and job.

Pods of the project's runtime advertise what they accept beyond one HTTP request per object there:
batches (``runtime.http1.batchwire``) and the file transport (``runtime.filewire``).
AIS's servers and foreign images advertise nothing, and get one request per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.httpclient import HTTPClientError
from airflow_ais_etl.dataplane.podrequest import join_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.cluster.base import PodEndpoint
    from airflow_ais_etl.dataplane.comm import PodClient

__all__ = ["PodCaps"]

_PROBE_SECONDS = 5.0
_MESSAGE_CAP = 2048

log = logging.getLogger(__name__)


class PodCaps:
    """The ``/health`` headers of each pod of one job (empty when the probe fails or is not 2xx)."""

    def __init__(self, client: PodClient) -> None:
        self.client = client
        self._answers: dict[str, asyncio.Future[Mapping[str, str]]] = {}

    async def headers(self, endpoint: PodEndpoint) -> Mapping[str, str]:
        """Return what the pod at ``endpoint`` answered (asked once; concurrent callers share the probe)."""
        answer = self._answers.get(endpoint.url)
        if answer is None:
            answer = self._answers[endpoint.url] = asyncio.ensure_future(self._ask(endpoint))
        return await asyncio.shield(answer)

    def says(self, endpoint: PodEndpoint, header: str) -> str | None:
        """Return ``header`` of an answer already in (``None``: not asked yet, or not said)."""
        answer = self._answers.get(endpoint.url)
        if answer is None or not answer.done() or answer.cancelled():
            return None
        return answer.result().get(header)

    async def _ask(self, endpoint: PodEndpoint) -> Mapping[str, str]:
        try:
            resp = await self.client.http.request(
                "GET", join_url(endpoint.url, "/health"), timeout=_PROBE_SECONDS
            )
            await resp.read_some(_MESSAGE_CAP)
        except (HTTPClientError, OSError, asyncio.TimeoutError) as err:
            log.debug("%s: /health failed: %s (no batches, no file transport)", endpoint.url, err)
            return {}
        return resp.headers if 200 <= resp.status < 300 else {}

    async def aclose(self) -> None:
        """Cancel the probes still running (an aborted job)."""
        for answer in self._answers.values():
            answer.cancel()
        for answer in self._answers.values():
            with contextlib.suppress(BaseException):
                await answer
