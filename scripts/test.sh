#!/usr/bin/env bash
# The whole check: install what is missing, then lint, type-check, check the declared
# dependencies, run every test, build the docs site with warnings as errors, and install
# the built wheel into brand-new venvs (latest and lowest allowed versions) and use it there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 -m ruff check src tests benchmarks scripts
python3 -m ruff format --check src tests benchmarks scripts
python3 -m mypy
python3 -m deptry src
python3 -m pytest -q "$@"
NO_MKDOCS_2_WARNING=1 python3 -m mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
python3 scripts/smoke_install.py
python3 scripts/smoke_install.py --lowest
