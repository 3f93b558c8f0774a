#!/usr/bin/env bash
# Our generated MobileNet v1 code and our executor against onnxruntime on the same ONNX files (1.0-224, 0.5-224, 0.25-224,
# the seed's 32x32 network), alternating, for 1 and 2 threads: medians and ratios.
#   bench/compare.sh [--models 1.0-224,seed] [--threads 1,2] [--rounds 15]
# Python: $MOBILENETC_PYTHON, else <repo>/.venv/bin/python (onnxruntime, numpy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
python="${MOBILENETC_PYTHON:-$repo/.venv/bin/python}"
# The bench profile (release settings) shares its build with `cargo bench`.
cargo build --profile bench --quiet --manifest-path "$here/Cargo.toml" --bin serve
serve="$here/target/release/serve"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$python" "$here/compare.py" --serve "$serve" --dir "$dir" "$@"
