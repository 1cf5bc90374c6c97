"""Buckets: list, stat, stream and atomically write objects in a directory or an object store.

* :mod:`~airflow_ais_etl.dataplane.storage.base`: the bucket contract (``Bucket``, ``ObjInfo``, errors)
* :mod:`~airflow_ais_etl.dataplane.storage.local`: directories and ``file://`` URLs (the fast path)
* :mod:`~airflow_ais_etl.dataplane.storage.objectstore`: object stores through Airflow
* :mod:`~airflow_ais_etl.dataplane.storage.urls`: one spelling and a short id per bucket URL
* :mod:`~airflow_ais_etl.dataplane.storage.opener`: ``open_bucket``, which picks the kind by URL

Import each name from the module that defines it.
"""

from __future__ import annotations
