"""What model.quantize_denoiser keeps, measured: one Qwen-Image transformer block at its real width.

    .venv/bin/python benchmarks/flow_quantize_block.py

MEASURED on the CPU, random weights: a QwenImageTransformer2DModel with one of its 60 blocks and all
of its embedders at the published widths (380 M parameters) is quantised by models/quantize.py
(bitsandbytes int8 and nf4, as training does) and run on a 16x16-token image with 64 text tokens.
Prints the weight bytes against bf16 and the output's relative L2 error against the fp32 model.
Random weights are Gaussian, which NormalFloat is built for; trained weights may differ. About
4 GiB of memory and a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import copy
import time

import torch
from diffusers import QwenImageTransformer2DModel

from coverforge.models.quantize import quantize_module, tensor_bytes


def main() -> None:
    torch.manual_seed(0)
    base = QwenImageTransformer2DModel(num_layers=1, attention_head_dim=128, num_attention_heads=24, joint_attention_dim=3584,
                                       in_channels=64, out_channels=16, patch_size=2).eval()
    n = sum(p.numel() for p in base.parameters())
    g = torch.Generator().manual_seed(0)
    h = w = 16
    image, text = torch.randn(1, h * w, 64, generator=g), torch.randn(1, 64, 3584, generator=g)

    def run(model):
        with torch.no_grad():
            return model(hidden_states=image, timestep=torch.tensor([0.5]), encoder_hidden_states=text,
                         img_shapes=[[(1, h, w)]], return_dict=False)[0]

    ref = run(base)
    print(f"Qwen-Image, 1 block + embedders: {n / 1e6:.0f} M parameters, {2 * n / 2**30:.3f} GiB in bf16")
    for kind in ("int8", "nf4"):
        model = copy.deepcopy(base)
        started = time.perf_counter()
        quantize_module(model, kind, torch.device("cpu"), torch.float32)
        seconds = time.perf_counter() - started
        error = ((run(model) - ref).norm() / ref.norm()).item()
        size = tensor_bytes(model)
        print(f"  {kind}: {size / 2**30:.3f} GiB ({size / (2 * n):.3f}x bf16), output relative error {error:.4f}, quantised in {seconds:.1f} s")
        del model


if __name__ == "__main__":
    main()
