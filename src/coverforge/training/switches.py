"""Speed and memory switches from `run.*`: each changes how the same computation is scheduled,
not what it computes (so each may change when resuming). Effects are measured in
benchmarks/bench_train_savers.py and recorded in benchmarks/RESULTS.md."""

from __future__ import annotations

import torch

from coverforge.config import RunConfig, TrainConfig
from coverforge.errors import CoverforgeError
from coverforge.models.families import family_of
from coverforge.models.vae_precision import vae_dtype


def apply_switches(parts, t: RunConfig) -> None:
    """Before Accelerate wraps the modules: attention kernel, VAE slicing/tiling, compile.
    (Gradient checkpointing is switched on per trained part by the recipe.)"""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    unet = parts.unet
    # The flow transformers keep their own joint-attention processors (a generic one would drop the
    # text stream); diffusers runs them on torch's SDPA already.
    if not family_of(parts.family).has_flow and any(True for _ in unet.attn_processors):
        # Classic SD UNets; the from-scratch UNet's attention blocks are diffusers Attention too.
        unet.set_attn_processor(AttnProcessor2_0() if t.attention == "sdpa" else AttnProcessor())
    if parts.vae is not None:
        # Only the encoder runs in training (and when caching); both switches cut its peak memory.
        parts.vae.enable_slicing() if t.vae_slicing else parts.vae.disable_slicing()
        parts.vae.enable_tiling() if t.vae_tiling else parts.vae.disable_tiling()
    if t.compile_unet:
        try:
            # Module.compile keeps the module (and its state_dict names): checkpoints stay interchangeable.
            unet.compile()
        except Exception as e:  # the backend is chosen lazily; this catches only set-up failures
            raise CoverforgeError(f"run.compile_unet: torch.compile is unavailable here ({e})") from None


def frozen_dtype(t: TrainConfig, device: torch.device) -> torch.dtype:
    """Frozen parts run in the mixed-precision dtype on GPU; on CPU everything stays fp32."""
    if device.type == "cpu":
        return torch.float32
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(t.mixed_precision, torch.float32)


def place_models(parts, t: TrainConfig, device: torch.device) -> None:
    """Frozen weights in the mixed-precision dtype (the VAE as its config allows), trained ones in
    fp32, all on `device`: a LoRA-adapted model keeps its frozen base in the low dtype and only its
    adapters in fp32 (a 20B transformer's base in fp32 would double its memory). Training and
    `coverforge cache` both place models here, so the cache is written with the precision training
    looks it up with."""
    low = frozen_dtype(t, device)
    for m in (parts.unet, parts.vae, *parts.text_encoders):
        if m is None:
            continue
        dtype = vae_dtype(m, low) if m is parts.vae else low
        trained = [p for p in m.parameters() if p.requires_grad]
        if len(trained) == sum(1 for _ in m.parameters()):
            dtype = torch.float32  # a full fine-tune
        m.to(device) if m.dtype == dtype else m.to(device, dtype=dtype)
        for p in trained:
            if p.dtype != torch.float32:
                p.data = p.data.float()
