#!/usr/bin/env bash
# Build and install the OPTIONAL torch-scatter backend of finsta_core into the project's virtual environment.
#
#   bash scripts/install_scatter.sh            # into .venv (the venv scripts/setup.sh made)
#   PYTHON=/path/to/python bash scripts/install_scatter.sh
#
# Why a script: torch-scatter ships source only for recent torch releases, and its setup.py imports torch.
# `pip install torch-scatter` (and `pip install finsta[scatter]`) builds it in an isolated environment without
# torch and fails; it builds only with --no-build-isolation, against the torch already installed.
# You do not need it: native torch is finsta_core's default backend and is faster on CPU (docs/equations.md,
# "Scatter backend"). Select it afterwards with FinstaConfig(scatter_backend="torch_scatter") or "auto".
# Environment: MAX_JOBS (parallel compile jobs, default: number of CPUs), TORCH_SCATTER_SPEC (default below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SPEC="${TORCH_SCATTER_SPEC:-torch-scatter>=2.1}"

if [ ! -x "$PY" ]; then
    echo "install_scatter.sh: no Python at $PY; run scripts/setup.sh first or set PYTHON=/path/to/python" >&2
    exit 1
fi
if ! TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"; then
    echo "install_scatter.sh: torch does not import in $PY; install the project first (scripts/setup.sh)" >&2
    exit 1
fi
if ! "$PY" -c 'import setuptools' 2>/dev/null; then
    echo "install_scatter.sh: setuptools is missing in $PY (needed without build isolation): $PY -m pip install setuptools" >&2
    exit 1
fi
if ! command -v "${CXX:-c++}" >/dev/null 2>&1; then
    echo "install_scatter.sh: no C++ compiler (${CXX:-c++}) on PATH; torch-scatter compiles from source" >&2
    exit 1
fi

echo "WARNING: compiling $SPEC from source against torch $TORCH_VERSION."
echo "         This takes minutes (about 5 on an idle 2-core machine, over 20 on a loaded one) and ~1.5 GB of RAM"
echo "         per compile job. pip caches the built wheel, so a reinstall is fast."
export MAX_JOBS="${MAX_JOBS:-$(nproc 2>/dev/null || echo 1)}"
"$PY" -m pip install --no-build-isolation "$SPEC"

cd "$ROOT"
"$PY" - <<'PY'
import torch

from finsta_core.graphs import scatter as S

if not S.torch_scatter_available():
    raise SystemExit("install_scatter.sh: torch-scatter installed but does not import (built for another torch?)")
idx = torch.randint(0, 7, (50,))
x = torch.randn(50, 4)
ref = S.segment_softmax(x, idx, 7)
S.set_scatter_backend("torch_scatter")
got = S.segment_softmax(x, idx, 7)
S.set_scatter_backend("native")
torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
print("torch-scatter works and agrees with native torch; select it with scatter_backend='torch_scatter' or 'auto'")
PY
