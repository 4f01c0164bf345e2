#!/usr/bin/env bash
# Serves the app at http://127.0.0.1:8080 (installs what is missing first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve
export PATH="$PWD/tools/binaryen/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# No live reload: Trunk would inject an inline script, which the page's CSP refuses. Reload
# the page by hand after an edit.
exec trunk serve --release --offline --no-autoreload --address 127.0.0.1 --port "${PORT:-8080}" "$@"
