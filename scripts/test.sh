#!/usr/bin/env bash
# Runs every test: native (CPU backend and wgpu on Vulkan/lavapipe), WebGPU in headless
# Chromium (wasm-bindgen-test), and the page test (Playwright driving the served app).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Mesa's Vulkan loader complains on every start without one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
start=$SECONDS
step() { echo; echo "=== $* ($((SECONDS - start)) s)"; }

step "native tests: unit, goldens on flex (CPU) and wgpu (Vulkan), weights errors"
cargo test --release --locked -- --nocapture

step "browser tests: the golden suite on WebGPU in headless Chromium"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=900
cargo test --release --locked --target wasm32-unknown-unknown --test web_goldens
cargo test --release --locked --target wasm32-unknown-unknown --test web_weights

step "page test: the app served, driven by Playwright"
bash scripts/page-test.sh

step "all tests passed"
