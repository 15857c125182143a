"""Encode one batch of random covers with a model's VAE, as the latent cache does, and print the time.

    .venv/bin/python benchmarks/vae_encode.py MODEL --size 1024x1536 [--batch 4] [--slicing] [--tiling]

bench_vae_memory.py runs this in its own process so that the peak RSS it reads is the encode's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="diffusers model folder with a vae/ subfolder")
    ap.add_argument("--size", required=True, help="WxH in pixels")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--slicing", action="store_true", help="AutoencoderKL.enable_slicing: one image at a time")
    ap.add_argument("--tiling", action="store_true", help="AutoencoderKL.enable_tiling: overlapping tiles")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    vae = AutoencoderKL.from_pretrained(Path(args.model) / "vae").eval()
    if args.slicing:
        vae.enable_slicing()
    if args.tiling:
        vae.enable_tiling()
    pixels = torch.rand(args.batch, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    started = time.perf_counter()
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
    print(f"latents={tuple(latents.shape)} encode_s={time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main()
