#!/usr/bin/env bash
# Benchmark on a GPU machine: full-size SD-2.1 UNet evaluations (random weights, 64x64 latents)
# through burn-wgpu on Vulkan next to PyTorch (diffusers) on CUDA, all in one command:
#   - burn f32 vs burn 8-bit (issue 6: the quantized UNet's time against f32),
#   - burn vs PyTorch f32 and fp16 (issue 7: the engine against the reference),
#   - burn with and without DAM at the SOW cycle batch, 4 (issue 8: the cost of DAM),
#   - burn's kinds of work one at a time (convolution, matmul, attention, group norm).
#   SOW=path/to/sow PYTHON=python3 bash scripts/bench-gpu.sh [--runs R]
# SOW defaults to the release build; PYTHON needs torch with CUDA and diffusers. Each case has
# its own time limit so that one slow case cannot hide the others. Not part of the tests.
set -uo pipefail
cd "$(dirname "$0")/.."
SOW="${SOW:-target/release/sow}"
PYTHON="${PYTHON:-python3}"
runs=5
[ "${1:-}" = "--runs" ] && runs="$2"
limit="${CASE_LIMIT:-150}"

case_() { echo "== $*"; timeout "$limit" "$@" 2>&1 | grep -v "should be kept in float32" || echo "(failed or timed out)"; }
median() { sed -nE 's/.*step[^:]*: median ([0-9.]+) s.*/\1/p' | head -n 1; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
burn_f32_2=$(case_ "$SOW" bench-unet --device vulkan --scheme f32 --batch 2 --runs "$runs" | tee /dev/stderr | median)
burn_q8_2=$(case_ "$SOW" bench-unet --device vulkan --scheme q8 --batch 2 --runs "$runs" | tee /dev/stderr | median)
torch_f32_2=$(case_ "$PYTHON" scripts/bench_unet_torch.py --device cuda --dtype float32 --batch 2 --runs $((runs * 2)) | tee /dev/stderr | median)
torch_f16_2=$(case_ "$PYTHON" scripts/bench_unet_torch.py --device cuda --dtype float16 --batch 2 --runs $((runs * 2)) | tee /dev/stderr | median)
case_ "$SOW" bench-unet --device vulkan --scheme q8 --batch 4 --runs "$runs" --dam
case_ "$SOW" bench-unet --device vulkan --scheme f32 --batch 4 --runs "$runs" --dam
case_ "$SOW" bench-ops --device vulkan --runs "$runs"

ratio() { python3 -c "import sys; a, b = sys.argv[1:]; print(f'{float(a) / float(b):.2f}' if a and b else 'n/a')" "$1" "$2"; }
echo "== ratios at batch 2 (time over time; lower is better for the first)"
echo "burn q8 / burn f32:        $(ratio "$burn_q8_2" "$burn_f32_2")"
echo "burn f32 / torch f32:      $(ratio "$burn_f32_2" "$torch_f32_2")"
echo "burn f32 / torch fp16:     $(ratio "$burn_f32_2" "$torch_f16_2")"
echo "burn q8 / torch fp16:      $(ratio "$burn_q8_2" "$torch_f16_2")"
