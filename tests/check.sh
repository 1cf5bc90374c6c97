#!/usr/bin/env bash
# The whole check: lint, format, types, then every test. Run inside the project env (uv run).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
mypy
pytest "$@"
