#!/usr/bin/env bash
# The main job end to end on the default filesystem store (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 scripts/demo.py "$@"
