#!/usr/bin/env bash
# The page test: builds the app with Trunk (release, offline), then drives it in headless
# Chromium with Playwright (tests/page/). CARGO_TARGET_DIR, CHROMIUM and SCREENSHOT_DIR pass
# through from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

dist="$PWD/dist"
start=$SECONDS
trunk build --release --offline --dist "$dist"
echo "[page-test] trunk build: $((SECONDS - start)) s"

# npm ci wipes node_modules; skip it when the locked playwright-core is already there (offline).
want=$(node -p "require('./tests/page/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./tests/page/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  npm ci --prefix tests/page --no-audit --no-fund
fi

DIST_DIR="$dist" node --test tests/page/
