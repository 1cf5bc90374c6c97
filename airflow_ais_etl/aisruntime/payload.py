"""Turn ``ETL_CLASS_PAYLOAD`` back into the user's ``ETLServer`` subclass, or say why it cannot be.

The SDK encodes it with ``aistore.sdk.etl.webserver.utils.serialize_class`` (cloudpickle, then
base64); this is the inverse, the same as AIS's runtime bootstrap does it. Unpickling runs code
from the payload: the payload is the ETL's own code, as trusted as an init-code ETL's source.
"""

from __future__ import annotations

import base64
import binascii
import sys
from typing import Any

from airflow_ais_etl.aisruntime.errors import AIS_EXTRA_HINT, RuntimeFault

__all__ = ["etl_server_base", "load_server_class"]


def etl_server_base() -> type[Any]:
    """Return AIS's ``ETLServer`` base class, or fail naming the extra that provides it."""
    try:
        import cloudpickle  # noqa: F401  (aistore's dependency; checked here so the hint is right)
        from aistore.sdk.etl.webserver.base_etl_server import ETLServer
    except ImportError as exc:
        raise RuntimeFault(f"{AIS_EXTRA_HINT} ({exc})") from None
    base: type[Any] = ETLServer
    return base


def _version_hint(image_python: str) -> str:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if image_python and image_python != here:
        return (
            f"; the ETL asked for Python {image_python} (image tag) but this pod runs Python {here}: "
            f"call init_class from Python {here}, or run the pods with Python {image_python}"
        )
    return ""


def load_server_class(payload: str, image_python: str = "") -> type[Any]:
    """Return the ``ETLServer`` subclass pickled in ``payload``.

    :param image_python: the Python ``X.Y`` the image tag asked for (for the hint on failure)
    :raises RuntimeFault: not set, not base64, not unpicklable here, or not an ``ETLServer`` subclass
    """
    base = etl_server_base()
    if not payload.strip():
        raise RuntimeFault(
            "ETL_CLASS_PAYLOAD is not set: an aistorage/runtime_python pod serves the ETLServer subclass "
            "that the AIStore SDK's Etl.init_class puts there; use init_class, not init(image=...)"
        )
    try:
        raw = base64.b64decode(payload.strip().encode(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RuntimeFault(
            f"ETL_CLASS_PAYLOAD is not base64 ({exc}): it must be serialize_class(YourETLServer) "
            "from aistore.sdk.etl.webserver.utils, as Etl.init_class sends it"
        ) from None
    import cloudpickle

    try:
        cls = cloudpickle.loads(raw)
    except ModuleNotFoundError as exc:
        raise RuntimeFault(
            f"cannot unpickle ETL_CLASS_PAYLOAD: the class needs module {exc.name!r}, which this pod's "
            "environment lacks: pass it in init_class(dependencies=[...]) or install it where the pods "
            f"run{_version_hint(image_python)}"
        ) from None
    except Exception as exc:
        raise RuntimeFault(
            f"cannot unpickle ETL_CLASS_PAYLOAD ({type(exc).__name__}: {exc}): it must be "
            f"serialize_class(YourETLServer) from the same aistore version{_version_hint(image_python)}"
        ) from None
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise RuntimeFault(
            f"ETL_CLASS_PAYLOAD holds {type(cls).__name__} {cls!r:.80}, not a subclass of AIS's ETLServer: "
            "decorate a class that extends FastAPIServer, FlaskServer or HTTPMultiThreadedServer"
        )
    return cls
