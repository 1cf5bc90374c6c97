"""Who may reach what on the local backend: an ETL's secrets, its gateway URL and its bucket grants.

:meth:`LocalAccess.begin` makes an ETL's secrets when its pods start and :meth:`LocalAccess.end`
forgets them when they stop; :meth:`LocalAccess.grant` lets the ETL's pods read one bucket through
the gateway for the duration of a job (and not a moment longer, also when the job fails).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.base import BucketRef
from airflow_ais_etl.cluster.bucketmap import bucket_name
from airflow_ais_etl.cluster.grants import add_grant, create_grants, drop_grants, revoke_grant
from airflow_ais_etl.cluster.local.etlsecrets import EtlSecrets, load_secrets, new_secrets, save_secrets
from airflow_ais_etl.etl.errors import EtlNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_ais_etl.cluster.local.gateways import LocalGateways
    from airflow_ais_etl.cluster.local.state import LocalState

__all__ = ["LocalAccess"]


class LocalAccess:
    """The secrets and grants of the ETLs of one local home."""

    def __init__(self, state: LocalState, gateways: LocalGateways) -> None:
        self.state = state
        self.gateways = gateways

    def begin(self, name: str) -> EtlSecrets:
        """Make fresh secrets for ETL ``name`` (its pods are about to start), with no bucket granted."""
        value = new_secrets()
        save_secrets(self.state.secrets_file(name), value)
        create_grants(str(self.state.grants_dir()), value.gateway_secret, name)
        return value

    def end(self, name: str, only: EtlSecrets | None = None) -> None:
        """Forget ETL ``name``'s secrets and grants: nothing opens with them any more. Idempotent.

        :param only: forget them only if they are still these (a stop that began before a newer
            start must not take that start's secrets away)
        """
        value = load_secrets(self.state.secrets_file(name))
        if value is None or (only is not None and value != only):
            return
        drop_grants(str(self.state.grants_dir()), value.gateway_secret)
        self.state.secrets_file(name).unlink(missing_ok=True)

    def secrets(self, name: str) -> EtlSecrets | None:
        return load_secrets(self.state.secrets_file(name))

    def token(self, name: str) -> str | None:
        value = self.secrets(name)
        return value.token if value else None

    def target_url(self, tid: str, name: str) -> str:
        """Return ``AIS_TARGET_URL`` of target ``tid`` for the pods of ETL ``name``."""
        value = self.secrets(name)
        if value is None:
            raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
        return self.gateways.url(tid, value.gateway_secret)

    @staticmethod
    def bucket_ref(url: str) -> BucketRef:
        """Return how the gateway and the pods name the bucket at ``url``."""
        bucket, norm = bucket_name(url)
        return BucketRef(provider="ais", name=bucket, extra={"url": norm})

    @contextlib.contextmanager
    def grant(self, name: str, url: str) -> Iterator[BucketRef]:
        """Let ETL ``name``'s pods read the bucket at ``url`` through the gateway for the block."""
        ref = self.bucket_ref(url)
        bucket, norm = ref.name, ref.extra["url"]
        value = self.secrets(name)
        if value is None:  # not running: the job fails on its own with a clear error
            yield ref
            return
        grants_dir = str(self.state.grants_dir())
        job_id = uuid.uuid4().hex
        add_grant(grants_dir, value.gateway_secret, bucket, norm, job_id)
        try:
            yield ref
        finally:
            revoke_grant(grants_dir, value.gateway_secret, job_id)
