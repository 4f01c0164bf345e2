"""The PyTorch reference for `sow bench-unet`: one full-size SD-2.1-base UNet evaluation
(diffusers' UNet2DConditionModel from the committed SD-2.1 config, random weights), 64x64
latents, on the CPU (or a CUDA GPU with --device cuda, in f32 or --dtype float16), timed the
same way: one warm-up, then the median of --runs.

Run through scripts/bench-unet.sh, which runs both sides in one command and prints the ratio.
Needs torch and diffusers (tests/fixtures/requirements.txt); never used by the tests.
"""

import argparse
import json
import pathlib
import statistics
import time

import torch
from diffusers import UNet2DConditionModel

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = json.loads((ROOT / "tests/fixtures/sd21-configs/unet/config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with device:  # random initialisation where the model runs (fast on a GPU)
        unet = UNet2DConditionModel(**config).to(dtype).eval()
    sample = torch.randn(args.batch, 4, 64, 64, device=device, dtype=dtype)
    context = torch.randn(args.batch, 77, 1024, device=device, dtype=dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step() -> float:
        sync()
        started = time.perf_counter()
        with torch.no_grad():
            out = unet(sample, 501, encoder_hidden_states=context).sample
        sync()
        assert torch.isfinite(out).all(), "non-finite UNet output"
        return time.perf_counter() - started

    step()  # warm-up
    times = [step() for _ in range(max(1, args.runs))]
    print(
        f"torch UNet step (SD-2.1 full size, {args.device} {args.dtype}, 64x64, batch "
        f"{args.batch}, {args.threads} threads, torch {torch.__version__}): median {statistics.median(times):.3f} s over {len(times)} runs"
    )


if __name__ == "__main__":
    main()
