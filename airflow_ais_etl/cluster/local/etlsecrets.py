"""The secrets of one running ETL on the local backend: its pod token and its gateway secret.

Both are made fresh by every start, kept only in ``etls/<name>/secrets.json`` (0600) and the pods'
environment (``/proc/<pid>/environ`` is readable by the owner only), and never in a command line.
The token authenticates the engine to the pods; the gateway secret names the ETL to the gateway,
which then serves only the buckets its running jobs granted (:mod:`airflow_ais_etl.cluster.grants`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.local.state import read_json
from airflow_ais_etl.cluster.private import write_private_json

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["EtlSecrets", "load_secrets", "new_secrets", "save_secrets"]


@dataclass(frozen=True)
class EtlSecrets:
    """The pod token and the gateway secret of one ETL (never printed: ``repr`` hides them)."""

    token: str = field(repr=False)
    gateway_secret: str = field(repr=False)


def new_secrets() -> EtlSecrets:
    return EtlSecrets(secrets.token_hex(24), secrets.token_hex(20))


def save_secrets(path: Path, value: EtlSecrets) -> None:
    write_private_json(path, {"token": value.token, "gateway_secret": value.gateway_secret})


def load_secrets(path: Path) -> EtlSecrets | None:
    data = read_json(path, None)
    if not data:
        return None
    return EtlSecrets(str(data["token"]), str(data["gateway_secret"]))
