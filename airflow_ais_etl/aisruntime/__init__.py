"""AIS's ``runtime_python`` image, re-done as a program: serve an ``init_class`` ETL.

The AIStore SDK's ``Etl.init_class`` pickles an ``ETLServer`` subclass into the pod env
``ETL_CLASS_PAYLOAD`` and asks for the image ``aistorage/runtime_python:<python X.Y>`` with no
command. Where that image cannot run (the local backend, the Kubernetes emulator), the image maps
to ``python -m airflow_ais_etl.aisruntime`` (:func:`airflow_ais_etl.etl.runtimes.local_image_command`),
which does what the image's bootstrap does with AIS's own server code (``aistore[etl]``, our
``ais`` extra): unpickle the class, then serve it with uvicorn (FastAPI), gunicorn (Flask) or
in-process (HTTPMultiThreadedServer) on ``0.0.0.0:8000``, which a local pod maps to its own address.

Unlike the image this package never installs into the environment it runs in: that environment
is the user's, shared by every ETL on the machine (see :mod:`~airflow_ais_etl.aisruntime.packages`).
It imports no other part of the project, only the standard library and ``aistore``.
"""

from __future__ import annotations
