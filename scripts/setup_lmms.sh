#!/usr/bin/env bash
# Create (or reuse) a separate environment for lmms-eval (.venv-lmms) with this package and its lmms-eval plugin.
# lmms-eval cannot share the core lock (requirements-lock.txt): it pins av<16, crashes at start with filelock 4.x
# ("No module named 'filelock._api'"), and the lock's python-dateutil drags pytablewriter back to a 2019 release.
# So this environment resolves its own versions: torch 2.14.1 + torchvision 0.29.1 first (x86_64; 2.9.1 + 0.24.1 on
# aarch64), then finsta with the video, vision and lmms extras (lmms-eval==0.7.3, filelock<4). About 7 GB.
# Usage: bash scripts/setup_lmms.sh            (VENV=path to choose another location)
# Then:  .venv-lmms/bin/lmms-eval --model finsta_host --model_args run=results/runs/<run> --tasks finsta_msvd_qa \
#            --include_path lmms_tasks/ --output_path lmms_out/ --log_samples        (see docs/lmms-eval.md)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-lmms}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
case "$(uname -m)" in
  aarch64|arm64) pip_install torch==2.9.1 torchvision==0.24.1 ;;
  *) pip_install torch==2.14.1 torchvision==0.29.1 ;;
esac
pip_install -e ".[video,vision,lmms]"
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -c "from lmms_eval.models import MODEL_REGISTRY_V2 as r; \
assert 'finsta_host' in r.list_model_names(), 'finsta_host not registered'; print('lmms-eval environment ready')"
