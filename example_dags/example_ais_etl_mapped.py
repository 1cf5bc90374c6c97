"""Dynamic task mapping: one bucket-transform task per hash shard of one source bucket.

Each mapped task transforms the objects whose name hash falls in its shard (shards of about equal
size, whatever the names look like), so shards run, retry and resume independently; all write to
the same destination bucket.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator
from airflow_ais_etl.sensors.etl import AisEtlHealthSensor

ETL_NAME = "example-mapped"
DATA_DIR = os.path.join(tempfile.gettempdir(), "airflow-ais-etl-examples", "mapped")


def reverse_lines(data: bytes) -> bytes:
    """Reverse the order of the lines of one object (runs inside the transformation pods)."""
    lines = data.splitlines(keepends=True)
    return b"".join(reversed(lines))


DOC_MD = """
### One transform task per shard (dynamic task mapping)

**make_sample_bucket** writes a sample bucket and returns the shard numbers `0 .. shards-1`;
**transform_shard** is mapped over them with `shard=i, shards=N`: each task transforms the objects
whose CRC-32 name hash is `i` modulo `N` (equal shards by hash, not by prefix luck), and runs, fails
and retries on its own (`retries=2`, resuming its own shard where it stopped). Each mapped task is
named by its shard (`map_index_template`), so the grid shows `shard 0/3`, `shard 1/3`, ...
The health sensor is deferrable (it waits in the triggerer); **stop_etl** is a teardown.
"""

with DAG(
    dag_id="example_ais_etl_mapped",
    doc_md=DOC_MD,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "ais-etl"],
    params={
        "src": Param(os.path.join(DATA_DIR, "src"), type="string"),
        "dst": Param(os.path.join(DATA_DIR, "dst"), type="string"),
        "shards": Param(3, type="integer", minimum=1),
    },
) as dag:
    # [START howto_operator_ais_etl_mapped_prefixes]
    @task
    def make_sample_bucket(src: str, shards: int) -> list[int]:
        """Write sample objects (4 per shard) if the source is empty; return the shard numbers."""
        os.makedirs(src, exist_ok=True)
        if not os.listdir(src):
            for i in range(4 * int(shards)):
                with open(os.path.join(src, f"obj-{i:03d}.txt"), "w") as f:
                    f.write("".join(f"object {i} line {n}\n" for n in range(3)))
        return list(range(int(shards)))

    shard_numbers = make_sample_bucket("{{ params.src }}", "{{ params.shards }}")
    # [END howto_operator_ais_etl_mapped_prefixes]

    init = AisEtlInitCodeOperator(task_id="init_etl", etl_name=ETL_NAME, python_callable=reverse_lines)
    healthy = AisEtlHealthSensor(
        task_id="wait_healthy", etl_name=ETL_NAME, poke_interval=1, timeout=120, deferrable=True
    )

    # [START howto_operator_ais_etl_mapped_transform]
    transforms = AisEtlBucketTransformOperator.partial(
        task_id="transform_shard",
        etl_name=ETL_NAME,
        src="{{ params.src }}",
        dst="{{ params.dst }}",
        progress_interval=5,
        retries=2,
        retry_delay=timedelta(seconds=3),
        shards="{{ params.shards }}",  # every task splits the bucket the same way ...
        map_index_template="shard {{ task.shard }}/{{ task.shards }}",  # (the grid's name of a task)
    ).expand(shard=shard_numbers)  # ... and takes its own shard
    # [END howto_operator_ais_etl_mapped_transform]

    stop = AisEtlStopOperator(task_id="stop_etl", etl_name=ETL_NAME)

    # [START howto_operator_ais_etl_mapped_dependencies]
    shard_numbers >> init >> healthy >> transforms >> stop.as_teardown(setups=init)
    # [END howto_operator_ais_etl_mapped_dependencies]


if __name__ == "__main__":
    dag.test()
