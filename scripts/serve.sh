#!/usr/bin/env bash
# Serves the app at http://127.0.0.1:8080 (installs what is missing first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve
export PATH="$HOME/.cargo/bin:$PATH"
exec trunk serve --release --offline --address 127.0.0.1 --port "${PORT:-8080}" "$@"
