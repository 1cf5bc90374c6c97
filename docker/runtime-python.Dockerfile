# Transformer runtime image for init-code ETLs: Python + airflow_ais_etl.runtime (+ the gateway sidecar).
# Build all tags with docker/build-runtime-images.sh; the pod specs use
# image airflow-ais-etl/runtime-python:<X.Y>v2 and command `python -m airflow_ais_etl.runtime`.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AIS_ETL_CODE_DIR=/code \
    AIS_ETL_LISTEN_PORT=8080

# The runtime lives outside PYTHONPATH (pods set PYTHONPATH=/runtime for user dependencies):
# a .pth file in site-packages makes it importable whatever PYTHONPATH says.
# The runtime shares the protocol constants of the model (etl/constants.py imports nothing).
COPY airflow_ais_etl/__init__.py /opt/airflow-ais-etl/airflow_ais_etl/__init__.py
COPY airflow_ais_etl/etl/__init__.py airflow_ais_etl/etl/constants.py /opt/airflow-ais-etl/airflow_ais_etl/etl/
COPY airflow_ais_etl/runtime/ /opt/airflow-ais-etl/airflow_ais_etl/runtime/
# The gateway sidecar runs from this image too (python -m airflow_ais_etl.cluster.gateway), with
# every module it imports (tests/runtime/test_image.py checks the list): standard library only for
# directory buckets. Object-store buckets also need Airflow's task SDK and the store's provider,
# which this image does not install (set the connection's gateway_image to one that does).
COPY airflow_ais_etl/etl/errors.py airflow_ais_etl/etl/naming.py /opt/airflow-ais-etl/airflow_ais_etl/etl/
COPY airflow_ais_etl/cluster/__init__.py airflow_ais_etl/cluster/base.py airflow_ais_etl/cluster/bucketmap.py \
     airflow_ais_etl/cluster/directput.py airflow_ais_etl/cluster/gateway.py airflow_ais_etl/cluster/gatewaybatch.py \
     airflow_ais_etl/cluster/gatewaypaths.py airflow_ais_etl/cluster/grants.py airflow_ais_etl/cluster/private.py \
     airflow_ais_etl/cluster/sealedgrants.py /opt/airflow-ais-etl/airflow_ais_etl/cluster/
COPY airflow_ais_etl/dataplane/__init__.py /opt/airflow-ais-etl/airflow_ais_etl/dataplane/
COPY airflow_ais_etl/dataplane/storage/ /opt/airflow-ais-etl/airflow_ais_etl/dataplane/storage/
RUN python -c "import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], 'airflow-ais-etl-runtime.pth').write_text('/opt/airflow-ais-etl\n')" \
 && python -m compileall -q /opt/airflow-ais-etl \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin etl \
 && mkdir -p /code /runtime /scratch \
 && chown etl:etl /code /runtime /scratch

# Non-root, numeric (runAsNonRoot can verify it): the uid of podspecs/runtime.yaml's securityContext
# and RUNTIME_UID in airflow_ais_etl/etl/runtimes.py. In pods the root file system is read-only and
# /code, /runtime, /scratch (HOME, TMPDIR) are emptyDirs.
USER 10001
WORKDIR /
EXPOSE 8080
CMD ["python", "-m", "airflow_ais_etl.runtime"]
