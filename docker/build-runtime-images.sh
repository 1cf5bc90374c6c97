#!/usr/bin/env bash
# Build the four runtime images (run from anywhere; the build context is the repository root).
# Usage: docker/build-runtime-images.sh [extra docker build args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# tag                                   python
IMAGES=(
  "airflow-ais-etl/runtime-python:3.10v2 3.10"
  "airflow-ais-etl/runtime-python:3.11v2 3.11"
  "airflow-ais-etl/runtime-python:3.12v2 3.12"
  "airflow-ais-etl/runtime-python:3.13v2 3.13"
)

for entry in "${IMAGES[@]}"; do
  read -r tag version <<<"$entry"
  DOCKER_BUILDKIT=1 docker build \
    --build-arg "PYTHON_VERSION=${version}" \
    -f docker/runtime-python.Dockerfile \
    -t "$tag" \
    "$@" .
done
