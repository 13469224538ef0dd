#!/usr/bin/env bash
# Installs nao with its test tools on a fresh machine; safe to run again.
# torch is installed first as the CPU build 2.13.0 when missing: a plain `pip install torch`
# would pull the multi-GB CUDA build. Any torch >= 2.2 already present is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "torch==2.13.0"
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
