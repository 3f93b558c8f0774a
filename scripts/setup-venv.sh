#!/usr/bin/env bash
# Creates .venv with the Python peers the tests compare against (onnx, onnxruntime, numpy),
# at the versions pinned in scripts/requirements.txt. Idempotent: when the venv already has
# exactly those versions it only says so (no network).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

# Exit 0 when every `name==version` pin of requirements.txt is what the venv has installed.
pins_ok() {
  "$py" - scripts/requirements.txt <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and have != want:
        sys.exit(1)
PY
}

if [ ! -x "$py" ]; then
  python3 -m venv .venv || {
    echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2
    exit 1
  }
fi
if ! pins_ok; then
  "$py" -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
  pins_ok || { echo "the venv does not match scripts/requirements.txt after pip install" >&2; exit 1; }
fi
"$py" -c "import onnx, onnxruntime, numpy; print('venv ready: onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
