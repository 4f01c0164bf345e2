#!/usr/bin/env bash
# Benchmark: one full-size SD-2.1 UNet step (64x64, batch 2, random weights) in burn next to the
# same step in PyTorch (diffusers), on the same machine in the same command, and their ratio.
#   bash scripts/bench-unet.sh [--device cpu|vulkan] [--batch N] [--runs R]
# PYTHON names an interpreter with torch and diffusers (default: /opt/fixvenv/bin/python, the
# fixture venv; see tests/fixtures/README.md). Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/opt/fixvenv/bin/python}"
device=cpu batch=2 runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
sow() { cargo run --quiet --release --locked --bin sow -- "$@"; }
burn_line=$(sow bench-unet --device "$device" --batch "$batch" --runs "$runs" | tail -n 1)
torch_line=$("$PYTHON" scripts/bench_unet_torch.py --batch "$batch" --runs "$runs" | tail -n 1)
echo "$burn_line"
echo "$torch_line"
burn_s=$(sed -E 's/.*median ([0-9.]+) s.*/\1/' <<<"$burn_line")
torch_s=$(sed -E 's/.*median ([0-9.]+) s.*/\1/' <<<"$torch_line")
python3 -c "print(f'burn/torch time ratio: {$burn_s / $torch_s:.2f} (lower is better for burn)')"
