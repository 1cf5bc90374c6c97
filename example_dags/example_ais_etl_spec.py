"""Init an ETL from a Pod spec (our runtime image running a command over io://), then transform one object.

The container runs ``tr`` for every object (stdin = object, stdout = result): any program that
reads stdin and writes stdout is a transformer with the ``io://`` communication type.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime

from airflow.sdk import DAG, Param, task

from airflow_ais_etl.operators.etl import AisEtlInitSpecOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator, AisEtlObjectTransformOperator
from airflow_ais_etl.sensors.etl import AisEtlHealthSensor

ETL_NAME = "example-spec"
DATA_DIR = os.path.join(tempfile.gettempdir(), "airflow-ais-etl-examples", "spec")

# [START howto_ais_etl_pod_spec]
POD_SPEC = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "tr-upper"},
    "spec": {
        # Pod Security "restricted", which hardened namespaces enforce: the runtime image runs as
        # uid 10001; every container drops all capabilities and cannot escalate.
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "server",
                "image": "airflow-ais-etl/runtime-python:3.11v2",
                "command": ["tr", "a-z", "A-Z"],
                # The runtime image serves io:// when told so; any other image may ignore this.
                "env": [{"name": "COMM_TYPE", "value": "io://"}],
                "ports": [{"name": "default", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    },
}
# [END howto_ais_etl_pod_spec]

DOC_MD = """
### An ETL from a Pod spec, a bucket transform and a one-object transform

**init_etl** starts `example-spec` from `POD_SPEC`: the runtime image running `tr a-z A-Z` over
`io://` (stdin is the object, stdout the result). After the deferrable health sensor,
**transform_bucket** transforms the whole bucket and **transform_one_object** one object into a
local file, in parallel; **stop_etl** is a teardown. See the pods, logs and jobs in **AIS ETL**.
"""

with DAG(
    dag_id="example_ais_etl_spec",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "ais-etl"],
    params={
        "src": Param(os.path.join(DATA_DIR, "src"), type="string"),
        "dst": Param(os.path.join(DATA_DIR, "dst"), type="string"),
        "local_file": Param(os.path.join(DATA_DIR, "one-object.txt"), type="string"),
    },
) as dag:

    @task
    def make_sample_bucket(src: str) -> str:
        """Write a few sample objects when the source directory is empty or missing."""
        os.makedirs(src, exist_ok=True)
        if not os.listdir(src):
            for i in range(5):
                with open(os.path.join(src, f"line-{i}.txt"), "w") as f:
                    f.write(f"hello from object {i}\n")
        return src

    sample = make_sample_bucket("{{ params.src }}")

    # [START howto_operator_ais_etl_init_spec]
    init = AisEtlInitSpecOperator(task_id="init_etl", etl_name=ETL_NAME, spec=POD_SPEC, comm_type="io://")
    # [END howto_operator_ais_etl_init_spec]

    healthy = AisEtlHealthSensor(
        task_id="wait_healthy", etl_name=ETL_NAME, poke_interval=1, timeout=120, deferrable=True
    )

    # [START howto_operator_ais_etl_bucket_transform_minimal]
    transform = AisEtlBucketTransformOperator(
        task_id="transform_bucket", etl_name=ETL_NAME, src="{{ params.src }}", dst="{{ params.dst }}"
    )
    # [END howto_operator_ais_etl_bucket_transform_minimal]

    # [START howto_operator_ais_etl_object_transform]
    one_object = AisEtlObjectTransformOperator(
        task_id="transform_one_object",
        etl_name=ETL_NAME,
        src="{{ params.src }}",
        obj="line-0.txt",
        local_file="{{ params.local_file }}",
    )
    # [END howto_operator_ais_etl_object_transform]

    stop = AisEtlStopOperator(task_id="stop_etl", etl_name=ETL_NAME)

    sample >> init >> healthy >> [transform, one_object] >> stop.as_teardown(setups=init)


if __name__ == "__main__":
    dag.test()
