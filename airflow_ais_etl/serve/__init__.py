"""``ais-etl serve``: the subset of AIStore's REST API that the ``aistore`` Python SDK uses for ETL.

One ASGI app (Starlette, served by uvicorn) over the same :class:`~airflow_ais_etl.service.AisEtl`
as the CLI and the operators; buckets are directories under one served root. See docs/serve.md.
"""
