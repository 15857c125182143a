"""LoRA adapters through peft: presets, attaching, saving in the diffusers format, loading.

Saved adapters are the diffusers/PEFT `pytorch_lora_weights.safetensors` that
`pipe.load_lora_weights(folder)` reads, text-encoder parts included.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from coverforge.config import LoraConfig
from coverforge.deferred_imports import lora_dispatch_without_bnb
from coverforge.models.families import family_of

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
TEXT_ADAPTER = "text_encoder"
"""Flow families: the text encoder's adapter, a PEFT adapter folder beside the weights (their
pipelines' `load_lora_weights` loads the transformer only)."""

def _peft_config(targets: list[str], cfg: LoraConfig, layers: list[int] | None = None, exclude: list[str] | None = None):
    from peft import LoraConfig as PeftLoraConfig

    init = {"gaussian": "gaussian", "default": True}[cfg.init]
    # layers: only these indices of the model's `.layers.N.` stack get adapters.
    where = {"layers_to_transform": layers, "layers_pattern": "layers"} if layers is not None else {}
    if exclude:
        # Whole modules and everything under them (peft matches a regex against the full name).
        where["exclude_modules"] = "|".join(f"{re.escape(name)}(\\..*)?" for name in exclude)
    return PeftLoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, init_lora_weights=init, target_modules=targets, **where)


def add_unet_lora(unet, cfg: LoraConfig, family: str = "sd15") -> None:
    """Adapters on the denoiser (UNet or transformer): lora.unet_targets, else the family's preset;
    never on modules whose output the prediction never reads."""
    f = family_of(family)
    targets = cfg.unet_targets or f.lora_presets[cfg.unet_preset]
    unread = f.flow.unread_modules(unet) if f.has_flow else []
    # Only the unread modules the targets would reach (peft warns about exclusions that match nothing).
    names = [n for n, _ in unet.named_modules()]
    exclude = [e for e in unread if any((n == e or n.startswith(e + ".")) and any(n == t or n.endswith("." + t) for t in targets)
                                        for n in names)]
    with lora_dispatch_without_bnb():
        unet.add_adapter(_peft_config(targets, cfg, exclude=exclude))


def text_layers(text_encoder) -> int:
    """The encoder's transformer layers (an LLM with a vision tower keeps them under text_config)."""
    config = text_encoder.config
    return getattr(config, "text_config", config).num_hidden_layers


def add_text_lora(text_encoder, cfg: LoraConfig, layers: int | None = None, family: str = "sd15") -> None:
    """Adapters on the first `layers` transformer layers (all when None): the conditioning may
    read an earlier layer's output, and adapters above it would never train."""
    n = text_layers(text_encoder)
    f = family_of(family)
    targets = cfg.text_targets or list(f.text_lora_targets)
    # An LLM with a vision tower (Qwen2.5-VL) has MLPs of the same names there; naming the layers
    # keeps the adapters in the language model's `.layers.N.` stack.
    where = None if (layers is None or layers >= n) and not f.has_flow else list(range(min(n, layers or n)))
    with lora_dispatch_without_bnb():
        text_encoder.add_adapter(_peft_config(targets, cfg, where))


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
    # Loaders target the modules the file has keys for; an exclusion pattern (unread modules) then
    # matches nothing, and peft warns about it on every load.
    config.pop("exclude_modules", None)
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}


def save_lora(folder: str | Path, family: str, unet=None, text_encoder=None, text_encoder_2=None, metadata: dict | None = None) -> Path:
    """Write the adapters of whichever parts were trained, as diffusers' pipelines expect them."""
    f = family_of(family)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    modules = {f.denoiser: unet, **{name: m for name, m in zip(f.text_encoders, (text_encoder, text_encoder_2))}}
    if f.has_flow and text_encoder is not None:
        text_encoder.save_pretrained(folder / TEXT_ADAPTER)  # adapter_config.json + adapter_model.safetensors
        del modules["text_encoder"]
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
        with lora_dispatch_without_bnb():
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
    if (folder / TEXT_ADAPTER / "adapter_config.json").is_file():
        _load_text_adapter(parts.text_encoder, folder / TEXT_ADAPTER, scale, fuse)


def _load_text_adapter(text_encoder, folder: Path, scale: float, fuse: bool) -> None:
    """A flow family's text-encoder adapter (PEFT folder), at the transformer's scale, merged when fusing."""
    from peft.tuners.lora import LoraLayer

    with lora_dispatch_without_bnb():
        text_encoder.load_adapter(str(folder), adapter_name="coverforge")
    for module in text_encoder.modules():
        if isinstance(module, LoraLayer):
            if scale != 1.0:
                module.set_scale("coverforge", scale)
            if fuse:
                module.merge(adapter_names=["coverforge"])


def pipeline_from_parts(parts):
    """A stock diffusers pipeline sharing the parts' modules (used for LoRA loading and saving)."""
    import diffusers

    f = family_of(parts.family)
    scheduler = getattr(diffusers, f.training_scheduler if f.has_flow else "EulerDiscreteScheduler").from_config(parts.scheduler_config)
    components = {"vae": parts.vae, f.denoiser: parts.unet, "scheduler": scheduler}
    for i, name in enumerate(f.text_encoders):
        suffix = f"_{i + 1}" if i else ""
        components[name], components[f"tokenizer{suffix}"] = getattr(parts, name), getattr(parts, f"tokenizer{suffix}")
    if f.safety_checker_slots:
        components.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return f.pipeline_class()(**components)
