"""LoRA adapters through peft: presets, attaching, saving in the diffusers format, loading.

Saved adapters are the diffusers/PEFT `pytorch_lora_weights.safetensors` that
`pipe.load_lora_weights(folder)` reads, text-encoder parts included.
"""

from __future__ import annotations

from pathlib import Path

import torch

from coverforge.config import LoraConfig
from coverforge.models.families import family_of

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"

# Which UNet modules each preset adapts. `attn` is the seed's recipe: attention projections and
# the transformer blocks' in/out projections. Convolutions made the seed's model drift to grayscale,
# so they are opt-in.
UNET_PRESETS = {
    "attn": ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out"],
    "attn+ff": ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"],
    "attn+conv": ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "conv1", "conv2", "conv_shortcut"],
}


def _peft_config(targets: list[str], cfg: LoraConfig, layers: list[int] | None = None):
    from peft import LoraConfig as PeftLoraConfig

    init = {"gaussian": "gaussian", "default": True}[cfg.init]
    # layers: only these indices of the model's `.layers.N.` stack get adapters.
    where = {"layers_to_transform": layers, "layers_pattern": "layers"} if layers is not None else {}
    return PeftLoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, init_lora_weights=init, target_modules=targets, **where)


def add_unet_lora(unet, cfg: LoraConfig) -> None:
    unet.add_adapter(_peft_config(cfg.unet_targets or UNET_PRESETS[cfg.unet_preset], cfg))


def add_text_lora(text_encoder, cfg: LoraConfig, layers: int | None = None) -> None:
    """Adapters on the first `layers` transformer layers (all when None): the conditioning may
    read an earlier layer's output, and adapters above it would never train."""
    n = text_encoder.config.num_hidden_layers
    text_encoder.add_adapter(_peft_config(cfg.text_targets, cfg, None if layers is None or layers >= n else list(range(layers))))


def lora_state(module) -> dict[str, torch.Tensor]:
    """The adapter weights of a peft-wrapped module, with PEFT key names (`lora_A` / `lora_B`).

    Not diffusers' older names: `load_lora_weights` silently skips the UNet attention adapters
    when they are written as `to_q.lora.down` by `convert_state_dict_to_diffusers`.
    """
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(module)


def lora_metadata(module) -> dict:
    """The adapter's peft config (rank, alpha, targets): without it a loader assumes alpha = rank."""
    config = module.peft_config["default"].to_dict()
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}


def save_lora(folder: str | Path, family: str, unet=None, text_encoder=None, text_encoder_2=None, metadata: dict | None = None) -> Path:
    """Write the adapters of whichever parts were trained, as diffusers' pipelines expect them."""
    f = family_of(family)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    modules = {"unet": unet, **{name: m for name, m in zip(f.text_encoders, (text_encoder, text_encoder_2))}}
    kwargs = {}
    for name, module in modules.items():
        if module is not None:
            kwargs[f"{name}_lora_layers"] = lora_state(module)
            kwargs[f"{name}_lora_adapter_metadata"] = lora_metadata(module)
    f.pipeline_class().save_lora_weights(folder, safe_serialization=True, **kwargs)
    if metadata:
        # Keep the training config next to the weights (the safetensors header holds only strings).
        from safetensors.torch import load_file, save_file

        from safetensors import safe_open

        path = folder / LORA_WEIGHTS
        with safe_open(str(path), "pt") as f:
            existing = f.metadata() or {}
        save_file(load_file(path), path, metadata={**existing, "format": "pt", **{k: str(v) for k, v in metadata.items()}})
    return folder / LORA_WEIGHTS


def load_lora_into(parts, lora_path: str | Path, scale: float = 1.0, fuse: bool = False) -> None:
    """Load a LoRA file or folder (diffusers or kohya keys) into the parts' UNet and text encoders."""
    from coverforge.errors import CoverforgeError

    pipe = pipeline_from_parts(parts)
    lora_path = Path(lora_path)
    folder, name = (lora_path, LORA_WEIGHTS) if lora_path.is_dir() else (lora_path.parent, lora_path.name)
    if not (folder / name).is_file():
        raise CoverforgeError(f"LoRA weights {folder / name} not found")
    try:
        pipe.load_lora_weights(folder, weight_name=name, adapter_name="coverforge")
    except (ValueError, RuntimeError, KeyError) as e:
        # Shape or key mismatches: most often a LoRA trained for another family.
        raise CoverforgeError(f"{folder / name} does not fit this {parts.family} model "
                              f"(a LoRA for another family?): {str(e).splitlines()[0][:200]}") from None
    if fuse:
        pipe.fuse_lora(lora_scale=scale)
        pipe.unload_lora_weights()
    elif scale != 1.0:
        pipe.set_adapters(["coverforge"], adapter_weights=[scale])


def pipeline_from_parts(parts):
    """A stock diffusers pipeline sharing the parts' modules (used for LoRA loading)."""
    from diffusers import EulerDiscreteScheduler

    f = family_of(parts.family)
    components = dict(vae=parts.vae, unet=parts.unet, scheduler=EulerDiscreteScheduler.from_config(parts.scheduler_config))
    for i, name in enumerate(f.text_encoders):
        suffix = f"_{i + 1}" if i else ""
        components[name], components[f"tokenizer{suffix}"] = getattr(parts, name), getattr(parts, f"tokenizer{suffix}")
    if f.safety_checker_slots:
        components.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return f.pipeline_class()(**components)
