#!/usr/bin/env bash
# The test suite: sets up the Python reference peers, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-venv.sh
export MOBILENETC_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace --release "$@"
