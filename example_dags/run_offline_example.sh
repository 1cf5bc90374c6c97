#!/usr/bin/env bash
# The main job: run example_ais_etl_offline end to end on the embedded local backend, from nothing:
# a fresh AIRFLOW_HOME (sqlite) and a fresh local ETL cluster, a sample bucket of a few thousand
# objects of mixed sizes, init -> health -> offline transform -> verify -> stop. Prints where the
# result is and the job's stats. Run it inside the project env (see README: `uv run --locked ...`).
set -euo pipefail
cd "$(dirname "$0")/.."
work="${AIS_ETL_EXAMPLE_DIR:-$(mktemp -d -t ais-etl-example.XXXXXX)}"
num_objects="${AIS_ETL_EXAMPLE_OBJECTS:-3000}"
mkdir -p "$work"
export AIRFLOW_HOME="$work/airflow" AIS_ETL_HOME="$work/ais-etl-home"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/example_dags" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
echo "work directory: $work"
echo "- airflow db migrate (sqlite in $AIRFLOW_HOME)"
airflow db migrate > "$work/db-migrate.log" 2>&1 || { cat "$work/db-migrate.log"; exit 1; }
conf=$(printf '{"src": "%s/src", "dst": "%s/dst", "num_objects": %d}' "$work" "$work" "$num_objects")
echo "- airflow dags test example_ais_etl_offline $conf"
set +e
airflow dags test example_ais_etl_offline -c "$conf" > "$work/dag-test.log" 2>&1
rc=$?
set -e
grep -E "RESULT:|STATS:|etl example-offline: |\[DAG TEST\] end task|DagRun Finished" "$work/dag-test.log" \
  | sed -E 's/^[0-9TZ:.-]+ \[[a-z ]+\] //; s/ \[airflow[^]]*\] loc=.*$//; s/ loc=[a-z_]+\.py:[0-9]+$//' || true
if [ "$rc" -ne 0 ] || ! grep -q "DagRun Finished.*state=success" "$work/dag-test.log"; then
  echo "FAILED: the DAG run did not succeed; full log: $work/dag-test.log" >&2
  exit 1
fi
echo
echo "source bucket:      $work/src"
echo "destination bucket: $work/dst ($(find "$work/dst" -type f -not -path '*/.ais-etl/*' | wc -l) objects)"
echo "full log:           $work/dag-test.log"
echo "local ETL cluster:  $AIS_ETL_HOME (stopped; 'AIS_ETL_HOME=$AIS_ETL_HOME ais-etl show' to inspect)"
