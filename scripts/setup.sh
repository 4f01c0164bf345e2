#!/usr/bin/env bash
# Installs what building and testing SOW Studio needs on a Debian machine, skipping whatever is
# already there. `setup.sh serve` installs only what serving the app needs; `setup.sh test`
# (the default) everything the tests need as well.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"
export PATH="$HOME/.cargo/bin:$PATH"

TRUNK_VERSION=0.21.14          # 0.22 needs a newer rustc than this toolchain
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate in Cargo.lock

say() { echo "[setup] $*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; exit 1; fi
}

apt_packages=()
# Node.js runs wasm-opt (npm's binaryen) for every release build, and the page tests.
command -v node >/dev/null || apt_packages+=(nodejs npm)
if [ "$mode" = test ]; then
  command -v chromium >/dev/null || apt_packages+=(chromium)
  command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
  # lavapipe: a Vulkan driver on the CPU, so native wgpu tests run without a GPU.
  dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || apt_packages+=(mesa-vulkan-drivers)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  say "apt-get install ${apt_packages[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  say "cargo install trunk $TRUNK_VERSION"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  # No --locked: one of the CLI's pinned dependencies is gone from the registry.
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# wasm-opt for Trunk's release builds: npm's binaryen, a WebAssembly build of binaryen run by
# node (about 10 s to install; compiling binaryen takes far longer). Debian's wasm-opt 108
# corrupts burn's module: the scripts put this one first on PATH, and Trunk.toml pins its
# version, so a build never picks up another.
if [ ! -x tools/binaryen/node_modules/.bin/wasm-opt ]; then
  say "npm ci (binaryen: wasm-opt)"
  npm ci --prefix tools/binaryen --no-audit --no-fund >/dev/null
fi

if [ "$mode" = test ] && [ -f tests/page/package-lock.json ]; then
  if [ ! -d tests/page/node_modules/playwright-core ]; then
    say "npm ci (playwright-core, driving Debian's chromium)"
    npm ci --prefix tests/page --no-audit --no-fund >/dev/null
  fi
fi

cargo fetch --locked >/dev/null
say "ready ($mode)"
