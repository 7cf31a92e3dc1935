#!/usr/bin/env bash
# Kedro-Viz in a real browser: build the static site, serve it on localhost, load it in headless
# Chromium and check that the pipeline graph draws every node of the `train` pipeline (and at
# least clean_table, convert_table, split_table, build_model, train_model); save a screenshot.
#
#   scripts/viz_check.sh [SCREENSHOT]        default: docs/viz_screenshot.png
#
# Installs Debian's `chromium` when /usr/bin/chromium is missing (as root, or through sudo).
# Environment: PYTHON (default .venv/bin/python), PIPELINE (default train).
# Takes about 25 s once Chromium is installed (most of it `kedro viz build`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PIPELINE=${PIPELINE:-train}
SCREENSHOT=${1:-docs/viz_screenshot.png}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} KEDRO_DISABLE_TELEMETRY=1

if [ ! -x /usr/bin/chromium ]; then
  echo "viz_check: installing Debian's chromium" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

work=$(mktemp -d)
server=""
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The nodes the graph must show: the registered pipeline's, plus the core steps by name.
"$PYTHON" - "$PIPELINE" "$work/expect" <<'PY'
import sys
from pathlib import Path

from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

bootstrap_project(Path.cwd())
names = {node.name for node in pipelines[sys.argv[1]].nodes}
names |= {"clean_table", "convert_table", "split_table", "build_model", "train_model"}
Path(sys.argv[2]).write_text(",".join(sorted(names)))
PY

echo "viz_check: kedro viz build --include-previews (writes build/)" >&2
"$PYTHON" -m kedro viz build --include-previews >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; exit 1; }

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PYTHON" -m http.server --bind 127.0.0.1 --directory build "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

"$PYTHON" scripts/viz_check.py --url "http://127.0.0.1:$port/" \
  --expect "$(cat "$work/expect")" --screenshot "$SCREENSHOT"
echo "viz_check: done in ${SECONDS}s" >&2
