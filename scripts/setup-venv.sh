#!/usr/bin/env bash
# Creates .venv with the Python peers the tests compare against (onnx, onnxruntime, numpy).
# Idempotent: a second run only checks the imports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r scripts/requirements.txt
fi
.venv/bin/python -c "import onnx, onnxruntime, numpy; print('venv ready: onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
