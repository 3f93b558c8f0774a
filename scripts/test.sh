#!/usr/bin/env bash
# The test suite: sets up the Python reference peers, then runs every test of the workspace
# (release build: the end-to-end tests run whole MobileNets; --no-fail-fast so one failing
# test binary does not hide the others). Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-venv.sh
export MOBILENETC_PYTHON="$PWD/.venv/bin/python"
start=$(date +%s)
status=0
cargo test --workspace --release --no-fail-fast "$@" || status=$?
echo "test suite took $(( $(date +%s) - start )) s (exit $status)"
exit $status
