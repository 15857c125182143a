"""Speed and memory switches from `run.*`: each changes how the same computation is scheduled,
not what it computes (so each may change when resuming). Effects are measured in
benchmarks/bench_train_savers.py and recorded in benchmarks/RESULTS.md."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from coverforge.config import Config, RunConfig, TrainConfig
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


def training_forward(unet, cfg: Config, family: str, processes: int, autocast: torch.dtype | None, device: torch.device):
    """The denoiser call the training steps make: `(sample, timestep, hidden, added)` for a UNet,
    `(noisy, sigmas, hidden, mask)` for a flow transformer. Replayed from traces (`run.trace_unet`,
    training/traced_unet.py) where they compute exactly what the module would (and, for `auto`, on
    the CPU, where the gain is measured), else the module itself."""
    from coverforge.training.traced_unet import FlowForward, UNetForward

    blockers = {
        "the run has more than one process (DDP's forward does work a trace skips)": processes > 1,
        "run.gradient_checkpointing reruns Python in the backward pass": cfg.run.gradient_checkpointing,
        "run.compile_unet compiles the module instead": cfg.run.compile_unet,
        f"train.mixed_precision = {cfg.train.mixed_precision!r} runs the steps under autocast": autocast is not None,
    }
    reasons = [reason for reason, applies in blockers.items() if applies]
    if cfg.run.trace_unet == "on" and reasons:
        raise CoverforgeError(f"run.trace_unet = 'on' cannot apply here: {reasons[0]}; use 'auto' (traces wherever they are exact) or 'off'")
    trace = cfg.run.trace_unet == "on" or (cfg.run.trace_unet == "auto" and not reasons and device.type == "cpu")
    f = family_of(family)
    return FlowForward(unet, f.flow, trace) if f.has_flow else UNetForward(unet, trace)


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


def autocast_dtype(accelerator) -> torch.dtype | None:
    """The dtype the training steps' autocast computes in; None when they run without autocast."""
    if not getattr(accelerator, "native_amp", False):
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision)


def set_lora_input_casting(modules, enabled: bool) -> None:
    """peft casts each adapted layer's input to the adapters' dtype (fp32 here) before the adapters
    run. Under autocast that cast computes nothing (the adapters' matmul casts the same values back to
    the low dtype) but it makes a full-size copy of the layer's input, and autograd keeps one per
    adapted layer for the backward pass: SDXL at 1024 px, batch 4, bf16 held 1.6 GiB more activations
    than diffusers' example, which trains bf16 adapters (benchmarks/profile_peer_memory.py). The
    training steps run with it off under autocast; validation, which runs without autocast, turns
    it back on (`lora_inputs_cast`)."""
    for layer in _lora_layers(modules):
        layer.cast_input_dtype_enabled = enabled


@contextmanager
def lora_inputs_cast(modules):
    """peft's own casting of adapter inputs for the block (generation runs without autocast)."""
    layers = _lora_layers(modules)
    before = [layer.cast_input_dtype_enabled for layer in layers]
    for layer in layers:
        layer.cast_input_dtype_enabled = True
    try:
        yield
    finally:
        for layer, value in zip(layers, before):
            layer.cast_input_dtype_enabled = value


def _lora_layers(modules) -> list[torch.nn.Module]:
    """peft's LoRA layers in `modules` (those with an input-casting switch)."""
    return [layer for module in modules for layer in module.modules() if hasattr(layer, "cast_input_dtype_enabled")]
