"""Recipes: what is trainable and how it is optimised. LoRA, full fine-tuning and from-scratch
differ only here; the loop in `loop.py` is the same for all of them and for every family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from coverforge.config import Config, TrainConfig
from coverforge.errors import CoverforgeError
from coverforge.models import lora
from coverforge.models.families import family_of
from coverforge.models.loading import ModelParts, load_model
from coverforge.text.conditioning import EncoderSpec, encoder_specs
from coverforge.training.flat_adamw import FlatAdamW, can_flatten
from coverforge.training.scratch import build_scratch_parts

PARTS = ("unet", "text_encoder", "text_encoder_2")


@dataclass
class TrainedPart:
    """One trained module with its own learning rate (one optimizer parameter group)."""

    name: str
    module: torch.nn.Module
    lr: float

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]


def build_parts(cfg: Config) -> ModelParts:
    if cfg.train.recipe == "scratch":
        return build_scratch_parts(cfg.model, cfg.train.prediction_type, cfg.train.seed)
    return load_model(cfg.model.path, cfg.model.family, cfg.model.config_folder, cfg.model.allow_pickle)


def apply_recipe(parts: ModelParts, cfg: Config) -> list[TrainedPart]:
    """Freeze everything, then open up (or adapt) exactly the parts the config trains."""
    for module in (parts.unet, parts.vae, *parts.text_encoders):
        if module is not None:
            module.requires_grad_(False)
            module.eval()
    t = cfg.train
    wanted = {"unet": t.train_unet, "text_encoder": t.train_text_encoder, "text_encoder_2": t.train_text_encoder_2}
    rates = {"unet": t.lr_unet, "text_encoder": t.lr_text_encoder, "text_encoder_2": t.lr_text_encoder_2}
    trained = []
    for name in PARTS:
        module = getattr(parts, name)
        if not wanted[name]:
            continue
        if module is None:
            raise CoverforgeError(f"train.train_{name} is set but the {parts.family} model has no {name}")
        spec = None if name == "unet" else _encoder_spec(parts, name, cfg)
        if t.recipe == "lora":
            # Gaussian-initialised A, zero B: the adapted model starts equal to the base.
            torch.manual_seed(t.seed)
            if spec is None:
                lora.add_unet_lora(module, cfg.lora, parts.family)
            else:
                lora.add_text_lora(module, cfg.lora, layers=spec.layers_read(lora.text_layers(module)), family=parts.family)
        else:
            module.requires_grad_(True)
            if spec is not None:
                _freeze_unread(module, spec)
            else:
                _freeze_unread_denoiser(module, parts.family)
        module.train()
        if cfg.run.gradient_checkpointing:
            if name == "unet":
                module.enable_gradient_checkpointing()
            else:
                module.gradient_checkpointing_enable()
        trained.append(TrainedPart(name, module, rates[name]))
    return trained


def _encoder_spec(parts: ModelParts, name: str, cfg: Config) -> EncoderSpec:
    """The conditioning's own description of how this encoder is read (see text/conditioning.py)."""
    specs = encoder_specs(parts.family, [None] * len(parts.text_encoders), parts.text_encoders, cfg.text.clip_skip)
    return specs[("text_encoder", "text_encoder_2").index(name)]


_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_FINAL_NORM = re.compile(r"(^|\.)(final_layer_norm|norm)\.(weight|bias)$")  # CLIP's, and the LLMs' after the last layer
_NEVER_READ = ("visual.", "lm_head.")  # Qwen2.5-VL's vision tower and LM head: a text prompt reaches neither


def _freeze_unread(module: torch.nn.Module, spec: EncoderSpec) -> None:
    """Full fine-tuning: layers above the one the conditioning reads (and a final norm it does
    not apply, and parts no text reaches) get no gradient, so they stay frozen (and out of
    checkpoints and the optimizer)."""
    read = spec.layers_read(lora.text_layers(module))
    for key, p in module.named_parameters():
        layer = _LAYER.search(key)
        if ((layer and int(layer.group(1)) >= read) or (not layer and _FINAL_NORM.search(key) and not spec.reads_final_norm)
                or any(part in key for part in _NEVER_READ)):
            p.requires_grad_(False)


def _freeze_unread_denoiser(module: torch.nn.Module, family: str) -> None:
    """Full fine-tuning: the denoiser's modules whose output is dropped stay frozen (FlowModel.unread_modules)."""
    flow = family_of(family).flow
    unread = tuple(flow.unread_modules(module)) if flow is not None else ()
    for key, p in module.named_parameters():
        if key.startswith(tuple(f"{name}." for name in unread)):
            p.requires_grad_(False)


def trained_state(parts: TrainedPart | list[TrainedPart]) -> dict[str, torch.Tensor]:
    """Only the trainable tensors, keyed `part.param_name`: what checkpoints and EMA hold."""
    out = {}
    for part in parts:
        for key, p in part.module.named_parameters():
            if p.requires_grad:
                out[f"{part.name}.{key}"] = p.detach()
    return out


def load_trained_state(parts: list[TrainedPart], state: dict[str, torch.Tensor]) -> None:
    for part in parts:
        params = dict(part.module.named_parameters())
        for key, p in params.items():
            full = f"{part.name}.{key}"
            if p.requires_grad:
                if full not in state:
                    raise CoverforgeError(f"checkpoint lacks {full}: it was written by a different recipe")
                with torch.no_grad():
                    p.copy_(state[full])


def make_optimizer(t: TrainConfig, parts: list[TrainedPart], processes: int = 1) -> torch.optim.Optimizer:
    """AdamW (fused where the device has the kernel), stepped flat in a single process; 8-bit
    AdamW or Prodigy when the config asks. Under DDP (`processes` > 1) the reducer owns the
    gradients' storage (it re-points them at its buckets), so each tensor steps on its own there."""
    groups = [{"params": p.parameters(), "lr": p.lr, "name": p.name} for p in parts]
    if t.optimizer == "adamw":
        settings = dict(betas=tuple(t.betas), weight_decay=t.weight_decay, eps=t.eps)
        # LoRA's hundreds of small tensors (and the demo's UNet) step as one flat tensor per group.
        adamw = FlatAdamW if processes == 1 and can_flatten(groups) else torch.optim.AdamW
        try:
            # The fused kernel updates every tensor in one pass. On CPU torch otherwise loops over
            # tensors one by one: 3.6x slower on the demo UNet.
            return adamw(groups, fused=True, **settings)
        except RuntimeError:  # a device or dtype the fused kernel lacks
            return adamw(groups, **settings)
    if t.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise CoverforgeError("train.optimizer = 'adamw8bit' needs bitsandbytes and a GPU: pip install bitsandbytes") from None
        return bnb.optim.AdamW8bit(groups, betas=tuple(t.betas), weight_decay=t.weight_decay, eps=t.eps)
    if t.optimizer == "prodigy":
        try:
            from prodigyopt import Prodigy
        except ImportError:
            raise CoverforgeError("train.optimizer = 'prodigy' needs the prodigyopt package: pip install prodigyopt") from None
        # Prodigy estimates the step size itself; its lr is a multiplier around 1.0, not AdamW's 1e-4.
        # The parts keep their ratios: the largest rate becomes 1.0.
        top = max(p.lr for p in parts)
        for group in groups:
            group["lr"] = group["lr"] / top
        return Prodigy(groups, betas=tuple(t.betas), weight_decay=t.weight_decay)
    from transformers.optimization import Adafactor

    # Adafactor with explicit learning rates (relative_step off) so per-part rates still apply.
    return Adafactor(groups, lr=parts[0].lr, relative_step=False, scale_parameter=False, warmup_init=False, weight_decay=t.weight_decay)


def make_lr_schedule(t: TrainConfig, optimizer):
    from diffusers.optimization import get_scheduler

    warmup = int(round(t.warmup_ratio * t.max_steps))
    name = "constant_with_warmup" if t.lr_schedule == "constant" and warmup else t.lr_schedule
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=t.max_steps)
