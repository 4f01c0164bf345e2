#!/usr/bin/env bash
# The page tests: builds the app with Trunk (release, offline, wasm-opt from npm's binaryen),
# then drives it in headless Chromium with Playwright (tests/page/), one test file at a time.
# CARGO_TARGET_DIR, CHROMIUM and SCREENSHOT_DIR pass through from the environment; the
# screenshots land in SCREENSHOT_DIR (default: a new temporary folder, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/binaryen/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# npm ci wipes node_modules; skip it when the locked version is already there (offline).
npm_ci_if_needed() {
  local dir=$1 package=$2 want have
  want=$(node -p "require('./$dir/package-lock.json').packages['node_modules/$package'].version")
  have=$(node -p "try { require('./$dir/node_modules/$package/package.json').version } catch { '' }")
  if [ "$want" != "$have" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
}
npm_ci_if_needed tools/binaryen binaryen
npm_ci_if_needed tests/page playwright-core

dist="$PWD/dist"
start=$SECONDS
trunk build --release --offline --dist "$dist"
echo "[page-test] trunk build: $((SECONDS - start)) s"

# A quantized pack of the tiny model, made by the CLI as a user would, for the pack test.
export PACK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/sow-pack-XXXXXX")/pack"
cargo run --release --locked --quiet --bin sow -- pack --model tests/fixtures/tiny-sd2 --out "$PACK_DIR"

export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sow-page-XXXXXX")}"
echo "[page-test] screenshots: $SCREENSHOT_DIR"
DIST_DIR="$dist" node --test --test-concurrency=1 tests/page/
