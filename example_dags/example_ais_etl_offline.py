"""Offline transform: init an ETL from a function in this file, wait until healthy, transform a bucket, stop.

Run it with ``python example_dags/example_ais_etl_offline.py`` (``dag.test()``) or from the UI.
The local backend needs no configuration; ``src``/``dst`` default to directories under the
system temp dir, and a first task writes a sample source bucket if the source is empty.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta

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

DOC_MD = """
### Offline transform of a bucket through an AIS ETL

1. **make_sample_bucket** writes a sample source bucket (`src`) when it is empty.
2. **init_etl** starts the ETL `example-offline`: one transformation pod per target, running
   `to_upper` from this file (`comm_type` and `delay_ms` come from the run's params). It is
   *deferrable*: the worker creates the pods and the triggerer waits until they are ready (a pod
   that crashes fails the task at once with its log tail, and its pods are removed).
3. **wait_healthy** waits until every pod serves. It is *deferrable*: after one check on the worker
   the wait moves to the triggerer and frees the worker slot.
4. **transform_bucket** streams every object of `src` through the pods into `dst`. It has
   `retries=2`: when a target leaves or a pod dies the job aborts with a one-paragraph reason, and
   the retry restarts the ETL and **resumes** (objects already transformed are skipped).
5. **verify** compares every result with the transform applied locally; **stop_etl** is a
   teardown: it stops the pods even when a task failed, but leaves them to a concurrent run whose
   job still uses the ETL (it logs that run; the last run's teardown stops them).

Watch it run in **AIS ETL** (Airflow's navigation) or on the task's *AIS ETL job* tab: pods and
their health, CPU, memory and logs, and the job's live progress (objects, bytes, rate, ETA, errors).
"""

with DAG(
    dag_id="example_ais_etl_offline",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    tags=["example", "ais-etl"],
    params={
        "src": Param(os.path.join(DATA_DIR, "src"), type="string", description="source bucket (a directory)"),
        "dst": Param(os.path.join(DATA_DIR, "dst"), type="string", description="destination bucket"),
        "comm_type": Param("hpush://", enum=["hpush://", "hpull://", "hrev://"]),
        "num_objects": Param(2000, type="integer", minimum=1, description="size of the sample bucket"),
        "num_workers": Param(4, type="integer", minimum=1, description="requests in flight per target"),
        "resume": Param(True, type="boolean", description="skip objects this ETL already transformed"),
        "delay_ms": Param(0, type="integer", minimum=0, description="extra time per object (demo only)"),
    },
) as dag:

    @task
    def make_sample_bucket(src: str, num_objects: int) -> str:
        """Write a sample source bucket of mixed sizes when the source directory is empty or missing."""
        import random

        os.makedirs(src, exist_ok=True)
        if not os.listdir(src):
            rng = random.Random(num_objects)  # the same bucket for the same size, every run
            for i in range(num_objects):
                size = rng.choice((64, 512, 4096, 16384, 65536, 262144, 2 << 20 if i % 500 == 7 else 1024))
                line = f"sample object number {i} of the example bucket\n".encode()
                path = os.path.join(src, f"shard-{i // 500:02d}", f"obj-{i:05d}.txt")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write((line * (size // len(line) + 1))[:size])
        return src

    sample = make_sample_bucket("{{ params.src }}", "{{ params.num_objects }}")

    # [START howto_operator_ais_etl_init_code]
    init = AisEtlInitCodeOperator(
        task_id="init_etl",
        etl_name=ETL_NAME,
        python_callable=to_upper,
        comm_type="{{ params.comm_type }}",
        env={"EXAMPLE_DELAY_MS": "{{ params.delay_ms }}"},
        deferrable=True,  # the worker creates the pods; the triggerer waits until they are ready
    )
    # [END howto_operator_ais_etl_init_code]

    # [START howto_sensor_ais_etl_health]
    healthy = AisEtlHealthSensor(
        task_id="wait_healthy", etl_name=ETL_NAME, poke_interval=1, timeout=120, deferrable=True
    )
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
        # A retry resumes: the ETL is restarted from etl_definition if an abort stopped it, and the
        # objects this ETL already wrote to dst are skipped. (Short delay for the demo.)
        retries=2,
        retry_delay=timedelta(seconds=3),
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

    # [START howto_ais_etl_verify_result]
    @task
    def verify(src: str, dst: str, stats: dict) -> dict:
        """Check every destination object against the transform applied locally; report where it is."""
        checked = 0
        for root, _dirs, files in os.walk(src):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), src)
                with open(os.path.join(src, rel), "rb") as f_src, open(os.path.join(dst, rel), "rb") as f_dst:
                    if f_dst.read() != to_upper(f_src.read()):
                        raise ValueError(f"destination object {rel} differs from the transformed source")
                checked += 1
        print(f"RESULT: {checked} objects verified in {dst}")
        print(
            f"STATS: {stats['objects']} transformed, {stats['skipped']} skipped, {stats['error_count']} errors, "
            f"{stats['bytes_in']} bytes in, {stats['bytes_out']} bytes out, {stats['elapsed']} s, "
            f"per target: {stats['targets']}"
        )
        return {"verified": checked, "dst": dst}

    # [END howto_ais_etl_verify_result]

    checked = verify("{{ params.src }}", "{{ params.dst }}", transform.output)
    # [START howto_operator_ais_etl_stop_teardown]
    sample >> init >> healthy >> transform >> checked >> stop.as_teardown(setups=init)
    # [END howto_operator_ais_etl_stop_teardown]


if __name__ == "__main__":
    dag.test()
