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
# Fashion-MNIST for the main job (scripts/search_then_train.py), from Debian when it is missing.
# Not fatal: the tests do not need it, and nao downloads it itself where the network allows.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; } \
    || echo "setup: could not install dataset-fashion-mnist with apt-get; the main job will try to download it" >&2
fi
