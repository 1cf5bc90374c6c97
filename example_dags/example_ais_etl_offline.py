"""Offline transform: init an ETL from a function in this file, wait until healthy, transform a bucket, stop.

Run it with ``python example_dags/example_ais_etl_offline.py`` (``dag.test()``) or from the UI.
The local backend needs no configuration; ``src``/``dst`` default to directories under the
system temp dir, and a first task writes a sample source bucket if the source is empty.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime

from airflow.sdk import DAG, Param, task

from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator
from airflow_ais_etl.sensors.etl import AisEtlHealthSensor

ETL_NAME = "example-offline"
DATA_DIR = os.path.join(tempfile.gettempdir(), "airflow-ais-etl-examples", "offline")


# [START howto_ais_etl_transform_function]
def to_upper(data: bytes) -> bytes:
    """Upper-case one object; runs inside the transformation pods, so it imports what it needs."""
    import os
    import time

    delay_ms = int(os.environ.get("EXAMPLE_DELAY_MS") or 0)
    if delay_ms:
        time.sleep(delay_ms / 1000)
    return data.upper()


# [END howto_ais_etl_transform_function]

with DAG(
    dag_id="example_ais_etl_offline",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    tags=["example", "ais-etl"],
    params={
        "src": Param(os.path.join(DATA_DIR, "src"), type="string", description="source bucket (a directory)"),
        "dst": Param(os.path.join(DATA_DIR, "dst"), type="string", description="destination bucket"),
        "comm_type": Param("hpush://", enum=["hpush://", "hpull://", "hrev://"]),
        "num_objects": Param(20, type="integer", minimum=1, description="size of the sample bucket"),
        "num_workers": Param(4, type="integer", minimum=1, description="requests in flight per target"),
        "resume": Param(True, type="boolean", description="skip objects this ETL already transformed"),
        "delay_ms": Param(0, type="integer", minimum=0, description="extra time per object (demo only)"),
    },
) as dag:

    @task
    def make_sample_bucket(src: str, num_objects: int) -> str:
        """Write a small sample source bucket when the source directory is empty or missing."""
        os.makedirs(src, exist_ok=True)
        if not os.listdir(src):
            for i in range(num_objects):
                with open(os.path.join(src, f"obj-{i:04d}.txt"), "w") as f:
                    f.write(f"sample object number {i}\n" * 8)
        return src

    sample = make_sample_bucket("{{ params.src }}", "{{ params.num_objects }}")

    # [START howto_operator_ais_etl_init_code]
    init = AisEtlInitCodeOperator(
        task_id="init_etl",
        etl_name=ETL_NAME,
        python_callable=to_upper,
        comm_type="{{ params.comm_type }}",
        env={"EXAMPLE_DELAY_MS": "{{ params.delay_ms }}"},
    )
    # [END howto_operator_ais_etl_init_code]

    # [START howto_sensor_ais_etl_health]
    healthy = AisEtlHealthSensor(task_id="wait_healthy", etl_name=ETL_NAME, poke_interval=1, timeout=120)
    # [END howto_sensor_ais_etl_health]

    # [START howto_operator_ais_etl_bucket_transform]
    transform = AisEtlBucketTransformOperator(
        task_id="transform_bucket",
        etl_name=ETL_NAME,
        src="{{ params.src }}",
        dst="{{ params.dst }}",
        num_workers="{{ params.num_workers }}",
        skip_existing="{{ params.resume }}",
        progress_interval=5,
        etl_definition={
            "kind": "code",
            "python_callable": to_upper,
            "comm_type": "{{ params.comm_type }}",
            "env": {"EXAMPLE_DELAY_MS": "{{ params.delay_ms }}"},
        },
    )
    # [END howto_operator_ais_etl_bucket_transform]

    # [START howto_operator_ais_etl_stop]
    stop = AisEtlStopOperator(task_id="stop_etl", etl_name=ETL_NAME)
    # [END howto_operator_ais_etl_stop]

    sample >> init >> healthy >> transform >> stop.as_teardown(setups=init)


if __name__ == "__main__":
    dag.test()
