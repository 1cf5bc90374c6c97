"""Check at init that an ``fqn`` ETL's pods speak the protocol generation it declares.

The generations put the file name in different places (docs/protocol.md), and a server of the
other one does not fail: a 2025 server handed a December 2024 request transforms the empty body,
so every object would come out wrong. One request per pod settles it, naming a file that does
not exist the declared way and one that always exists (``/dev/null``) the other way:

* declared 2025: ``<path /dev/null>?etl_fqn=<missing>``; a 2025 server reads the missing file
  and answers an error, a December 2024 server reads ``/dev/null`` and answers 2xx;
* declared 2024: ``<path missing>`` with an empty body; a 2024 server answers an error, a 2025
  hpush server transforms the empty body and answers 2xx.

So a 2xx answer is a mismatch. The project's runtime reads ``etl_fqn`` first and passes both.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from airflow_ais_etl.dataplane.comm import PodClient
from airflow_ais_etl.etl.constants import ARG_FQN, HPUSH, PROTOCOL_2024, QPARAM_ETL_FQN, WS
from airflow_ais_etl.etl.errors import PodStartError
from airflow_ais_etl.etl.naming import fqn_path, path_escape
from airflow_ais_etl.etl.protocol import effective_protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.cluster.base import PodEndpoint
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["check_fqn_protocol", "probe_request"]

_ALWAYS_THERE = "/dev/null"
_PROBE_TIMEOUT = 30.0


def probe_request(endpoint: PodEndpoint, msg: InitMsg, missing: str) -> tuple[str, str]:
    """Return the method and URL of the probe for ``msg``'s declared generation."""
    method = "PUT" if msg.comm_type == HPUSH else "GET"
    if effective_protocol(msg.protocol) == PROTOCOL_2024:
        return method, endpoint.url + fqn_path(missing)
    query = urlencode({QPARAM_ETL_FQN: path_escape(missing)})
    return method, f"{endpoint.url}{fqn_path(_ALWAYS_THERE)}?{query}"


def _mismatch(msg: InitMsg, status: int, endpoint: PodEndpoint) -> PodStartError:
    if effective_protocol(msg.protocol) == PROTOCOL_2024:
        why = (
            "a December 2024 fqn request (file name in the URL path) naming a file that does not exist: "
            "the server ignores the path, as AIStore 2.x servers (aistore[etl] webservers) do. "
            "Re-init with protocol '2025' (the default) so the file name goes into query etl_fqn"
        )
    else:
        why = (
            "an AIStore 2.x fqn request whose query etl_fqn names a file that does not exist: the "
            "server read the request path instead, as December 2024 servers do. Re-init with "
            "protocol '2024', or make the server read query etl_fqn"
        )
    return PodStartError(
        f"protocol mismatch: the pod answered {status} to {why}",
        etl_name=msg.name,
        target=endpoint.target_id,
        pod_name=endpoint.pod_name,
    )


async def _probe_all(msg: InitMsg, endpoints: Sequence[PodEndpoint]) -> None:
    missing = f"/nonexistent-ais-etl-protocol-probe-{secrets.token_hex(8)}/object"
    async with PodClient(request_timeout=_PROBE_TIMEOUT) as client:
        for endpoint in endpoints:
            method, url = probe_request(endpoint, msg, missing)
            body, headers = (
                (b"", "Content-Type: application/octet-stream\r\n") if method == "PUT" else (None, "")
            )
            resp = await client.http.request(
                method,
                url,
                body=body,
                size=0 if body is not None else None,
                headers=headers,
                timeout=_PROBE_TIMEOUT,
            )
            await resp.read_some(4096)
            resp.close()
            if 200 <= resp.status < 300:
                raise _mismatch(msg, resp.status, endpoint)


def check_fqn_protocol(msg: InitMsg, endpoints: Sequence[PodEndpoint]) -> None:
    """Raise :class:`PodStartError` if ``fqn`` pods speak another generation than ``msg`` declares.

    Other arg types send identical requests in both generations and are not probed.
    """
    if msg.arg_type != ARG_FQN or msg.comm_type == WS or not endpoints:
        return  # ws:// exists only in 2025: its control message always carries "fqn"
    asyncio.run(_probe_all(msg, endpoints))
