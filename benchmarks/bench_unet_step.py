"""UNet LoRA training steps alone, as the default path runs them once latents and text embeddings
come from the cache: the real-size SDXL-base UNet at 1024x1024 on a GPU, or the small UNet on CPU.

    python benchmarks/bench_unet_step.py --device cuda --real-sdxl [--batch 1] [--steps 10]   # on a GPU machine
    .venv/bin/python benchmarks/bench_unet_step.py --device cpu [--quick]                    # the small UNet, 128 px

Random weights (the cost is in the shapes), frozen weights in bf16 (fp32 on CPU), fp32 LoRA,
AdamW, a 385-token context; variants sdpa, + gradient checkpointing, eager attention and
torch.compile. Prints images/s and, on CUDA, torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import time

import torch
from small_models import SDXL_POOLED_DIM, SDXL_TEXT_WIDTHS, SMALL_TEXT, real_sdxl_unet, small_unet
from tables import table


def unet_step_bench(device: str, real: bool, batch: int, steps: int, warmup: int, compile_run: bool = True) -> None:
    """Time LoRA training steps of the UNet alone, as the default path runs them once latents and
    text embeddings come from the cache: frozen weights in bf16 (fp32 on CPU), fp32 LoRA, AdamW."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
    from diffusers.training_utils import cast_training_params

    from coverforge.config import LoraConfig
    from coverforge.models.lora import add_unet_lora

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    side = 1024 if real else 128
    cross, pooled = (sum(SDXL_TEXT_WIDTHS), SDXL_POOLED_DIM) if real else (sum(w for w, _ in SMALL_TEXT), SMALL_TEXT[1][0])
    tokens = 77 * 5  # a 385-token book prompt: five CLIP windows
    variants = {"sdpa": {}, "sdpa + gradient checkpointing": {"gc": True}, "eager attention": {"eager": True},
                "sdpa + torch.compile": {"compile": True}}
    if not compile_run:
        del variants["sdpa + torch.compile"]
    rows = []
    for name, v in variants.items():
        torch.manual_seed(0)
        unet = (real_sdxl_unet(device, dtype) if real else small_unet().to(device, dtype))
        unet.requires_grad_(False)
        add_unet_lora(unet, LoraConfig())
        cast_training_params(unet, dtype=torch.float32)
        unet.set_attn_processor(AttnProcessor() if v.get("eager") else AttnProcessor2_0())
        if v.get("gc"):
            unet.enable_gradient_checkpointing()
        unet.train()
        params = [p for p in unet.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        model = torch.compile(unet) if v.get("compile") else unet
        g = torch.Generator(device).manual_seed(0)
        latents = torch.randn(batch, 4, side // 8, side // 8, device=device, generator=g, dtype=dtype)
        hidden = torch.randn(batch, tokens, cross, device=device, generator=g, dtype=dtype)
        added = {"text_embeds": torch.randn(batch, pooled, device=device, generator=g, dtype=dtype),
                 "time_ids": torch.tensor([[side, side, 0, 0, side, side]] * batch, device=device, dtype=dtype)}
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            started = 0.0
            for step in range(warmup + steps):
                if step == warmup:
                    torch.cuda.synchronize() if cuda else None
                    started = time.perf_counter()
                t = torch.randint(0, 1000, (batch,), device=device)
                noise = torch.randn_like(latents)
                with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=cuda):
                    pred = model(latents + noise, t, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False)[0]
                loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize() if cuda else None
            rate = steps * batch / (time.perf_counter() - started)
            peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if cuda else "-"
            rows.append([name, f"{rate:.2f}", peak])
            print(f"  {name}: {rate:.2f} images/s, peak {peak}", flush=True)
        except (RuntimeError, torch.OutOfMemoryError) as e:  # OOM or a compile failure: record it, go on
            rows.append([name, "failed", str(e).splitlines()[0][:100]])
        del unet, model, opt, params
        if cuda:
            torch.cuda.empty_cache()
    what = "real SDXL-base UNet" if real else "small SDXL UNet"
    print(f"\n### UNet LoRA training steps, {what}, {side}x{side}, batch {batch}, {tokens}-token context, {device}\n")
    print(table(["variant", "images/s", "peak GPU memory (allocated)"], rows))
    if cuda:
        print(f"\ndevice: {torch.cuda.get_device_name()}; torch {torch.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", required=True, help="cuda, cuda:N or cpu")
    ap.add_argument("--real-sdxl", action="store_true", help="the real-size SDXL-base UNet at 1024 px (else the small UNet at 128 px)")
    ap.add_argument("--batch", type=int, default=0, help="images per step (default 1 with --real-sdxl, else 4)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps after 2 warm-up steps (default 10; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="3 timed steps")
    ap.add_argument("--skip-compile-run", action="store_true", help="leave out the torch.compile variant")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    unet_step_bench(args.device, args.real_sdxl, args.batch or (1 if args.real_sdxl else 4),
                    steps=args.steps or (3 if args.quick else 10), warmup=2, compile_run=not args.skip_compile_run)


if __name__ == "__main__":
    main()
