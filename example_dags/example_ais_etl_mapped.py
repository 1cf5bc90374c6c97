"""Dynamic task mapping: one bucket-transform task per shard (prefix) of one source bucket.

Each mapped task transforms its own prefix, so shards run (and retry) independently; all write to
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

**make_sharded_bucket** writes a sample bucket of `shards` shards and returns one prefix per shard;
**transform_shard** is mapped over those prefixes, so each shard runs, fails and retries on its own
(`retries=2`, resuming where it stopped). Each mapped task is named by its prefix
(`map_index_template`), so the grid shows `shard-00/`, `shard-01/`, ... instead of 0, 1, 2.
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
    def make_sharded_bucket(src: str, shards: int) -> list[str]:
        """Write ``shards`` shards of sample objects if the source is empty; return one prefix per shard."""
        os.makedirs(src, exist_ok=True)
        if not os.listdir(src):
            for s in range(int(shards)):
                shard = os.path.join(src, f"shard-{s:02d}")
                os.makedirs(shard)
                for i in range(4):
                    with open(os.path.join(shard, f"obj-{i}.txt"), "w") as f:
                        f.write("".join(f"shard {s} object {i} line {n}\n" for n in range(3)))
        return sorted(f"{d}/" for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))

    prefixes = make_sharded_bucket("{{ params.src }}", "{{ params.shards }}")
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
        map_index_template="{{ task.prefix }}",  # the grid names each shard by its prefix
    ).expand(prefix=prefixes)
    # [END howto_operator_ais_etl_mapped_transform]

    stop = AisEtlStopOperator(task_id="stop_etl", etl_name=ETL_NAME)

    # [START howto_operator_ais_etl_mapped_dependencies]
    prefixes >> init >> healthy >> transforms >> stop.as_teardown(setups=init)
    # [END howto_operator_ais_etl_mapped_dependencies]


if __name__ == "__main__":
    dag.test()
