#!/usr/bin/env bash
# The whole check: lint, format, types, then every test. Run inside the project env (uv run).
# pytest runs in parallel (pyproject addopts: -n auto, see tests/conftest.py). Extra arguments go to
# pytest: -m "not integration" for the quick tier, -n 0 to run serially.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests (tests/ui) drive Debian's Chromium (Playwright never downloads a browser).
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
ruff check .
ruff format --check .
mypy
pytest "$@"
