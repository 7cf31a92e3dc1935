#!/usr/bin/env bash
# One-GPU check of the default task: bf16-mixed training throughput, peak memory and MFU.
#   benchmarks/gpu_check.sh [gpu_check.py options, e.g. --steps 300 --batch-size 128]
# Prepares the data (raw tables, clean, convert, split) when the training split is missing,
# then runs benchmarks/gpu_check.py. Without a GPU it runs a short 32-bit CPU fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} KEDRO_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
if ! "$BIN/python" - <<'PY'
from pathlib import Path
from kedro.config import OmegaConfigLoader
path = OmegaConfigLoader("conf", base_env="base", default_run_env="base")["catalog"]["train_set"]["filepath"]
raise SystemExit(0 if Path(path).is_file() else 1)
PY
then
  "$BIN/python" -m reprotrain.demo_data --out data/01_raw
  for step in clean convert split; do "$BIN/kedro" run --pipelines="$step"; done
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
exec "$BIN/python" benchmarks/gpu_check.py "$@"
