"""The UNet alone, once latents and text embeddings come from the cache: LoRA training steps timed
on a device (`bench_train.py --device cuda --real-sdxl`), and the paper estimate for the real
SDXL-base UNet on an H100 (`bench_train.py --paper-estimate`). Called from bench_train.py."""

from __future__ import annotations

import time

import torch
from markdown import table
from small_models import SDXL_POOLED_DIM, SDXL_TEXT_WIDTHS, SMALL_TEXT, real_sdxl_unet, small_unet

H100_BF16_DENSE_TFLOPS = 989.4  # H100 SXM5 datasheet, bf16 tensor cores without sparsity


# --- UNet training steps on a GPU (or the small UNet on CPU) ----------------------------------------


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


# --- paper estimate ------------------------------------------------------------------------------


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
