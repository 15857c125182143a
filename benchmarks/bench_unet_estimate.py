"""Paper estimate for the real-size SDXL-base UNet at 1024x1024 on an H100: FLOPs, images/s, memory.

    .venv/bin/python benchmarks/bench_unet_estimate.py [--utilisation 0.4] [--batch 1]

Runs on any machine: the UNet is built from its published config on the meta device, so nothing
is allocated. bench_unet_step.py times the same steps on a real GPU.
"""

from __future__ import annotations

import argparse

import torch
from small_models import SDXL_POOLED_DIM, SDXL_TEXT_WIDTHS, real_sdxl_unet
from tables import table

H100_BF16_DENSE_TFLOPS = 989.4  # H100 SXM5 datasheet, bf16 tensor cores without sparsity


def paper_estimate(utilisation: float, batch: int) -> None:
    """FLOPs of one real-size SDXL UNet forward at 1024x1024, counted on the meta device; images/s
    at `utilisation` of the H100 bf16 dense peak; memory from parameter counts and the bytes that
    autograd saves for backward (counted by a saved-tensors hook during a meta forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    from coverforge.config import LoraConfig
    from coverforge.models.lora import add_unet_lora

    unet = real_sdxl_unet("meta", torch.bfloat16)
    unet.requires_grad_(False)
    add_unet_lora(unet, LoraConfig())
    n_params = sum(p.numel() for p in unet.parameters() if not p.requires_grad)
    lora_params = sum(p.numel() for p in unet.parameters() if p.requires_grad)
    param_ids = {id(p) for p in unet.parameters()}

    def forward(tokens: int, gc: bool) -> tuple[float, float]:
        """(FLOPs, saved activation bytes) of one forward of one 1024x1024 image."""
        unet.train()
        if gc:
            unet.enable_gradient_checkpointing()
        else:
            unet.disable_gradient_checkpointing()
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            base = t._base if t._base is not None else t  # views share their base's memory: count it once
            if id(base) not in param_ids:
                saved[id(base)] = base.numel() * base.element_size()
            return t

        with torch.device("meta"):
            x = torch.randn(1, 4, 128, 128, dtype=torch.bfloat16)
            ctx = torch.randn(1, tokens, sum(SDXL_TEXT_WIDTHS), dtype=torch.bfloat16)
            added = {"text_embeds": torch.randn(1, SDXL_POOLED_DIM, dtype=torch.bfloat16), "time_ids": torch.randn(1, 6, dtype=torch.bfloat16)}
            ts = torch.tensor([500])
        with FlopCounterMode(display=False) as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            unet(x, ts, encoder_hidden_states=ctx, added_cond_kwargs=added, return_dict=False)
        return counter.get_total_flops(), sum(saved.values())

    peak = H100_BF16_DENSE_TFLOPS * 1e12
    rows = []
    for tokens in (77, 385):
        fwd, act = forward(tokens, gc=False)
        _, act_gc = forward(tokens, gc=True)
        for label, factor, activ in (("no checkpointing", 3, act), ("gradient checkpointing", 4, act_gc)):
            step = factor * fwd
            weights = n_params * 2 + lora_params * 16  # bf16 frozen; fp32 LoRA weight + grad + 2 Adam moments
            memory = weights + batch * activ
            rows.append([tokens, label, f"{fwd / 1e12:.2f}", f"{factor}x = {step / 1e12:.1f}", f"{utilisation * peak / step:.1f}",
                         f"{activ / 2**30:.1f}", f"{memory / 2**30:.1f}"])
    print(f"\n### Paper estimate: real SDXL-base UNet ({n_params / 1e9:.3f} B params), 1024x1024 (128x128 latents), H100 SXM\n")
    print(f"LoRA preset 'attn', rank {LoraConfig().rank}: {lora_params / 1e6:.1f} M trained parameters. Peak bf16 dense "
          f"{H100_BF16_DENSE_TFLOPS:.0f} TFLOP/s at {utilisation:.0%} utilisation; memory for batch {batch}.\n")
    print(table(["context tokens", "memory saver", "forward TFLOP/image", "train step TFLOP/image", "images/s",
                 "activations GiB/image", f"memory GiB (batch {batch})"], rows))
    print("\nHow: FLOPs from torch.utils.flop_counter.FlopCounterMode over one forward on the meta device "
          "(matmuls, convolutions, attention; elementwise ops not counted). Training step = forward + backward "
          "(2x forward: gradients for activations and weights) = 3x forward; LoRA skips the frozen weights' "
          "gradients, so 3x is an upper bound (about 2x is the floor). Gradient checkpointing adds one more "
          "forward. Memory = frozen weights in bf16 + LoRA weights, gradients and two AdamW moments in fp32 "
          "(16 bytes each) + activations: the bytes autograd saves for backward during that meta forward "
          "(bf16, frozen weights excluded, views counted once), times the batch. Not counted: text encoders and "
          "VAE (cached), the allocator's fragmentation, the transient workspace of backward, and with "
          "checkpointing the one block whose activations are recomputed at a time.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utilisation", type=float, default=0.4, help="fraction of the H100 bf16 dense peak reached")
    ap.add_argument("--batch", type=int, default=1, help="images per step, for the memory column")
    args = ap.parse_args()
    paper_estimate(args.utilisation, args.batch)


if __name__ == "__main__":
    main()
