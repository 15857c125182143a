"""A flow family's transformer LoRA in the ComfyUI key layout.

diffusers/PEFT `transformer.<module>.lora_A.weight` becomes `diffusion_model.<module>.lora_A.weight`
(B likewise) plus a scalar `diffusion_model.<module>.alpha`: the module path stays diffusers'. That
is what both readers take:
- ComfyUI (comfy/lora.py `model_lora_keys_unet`): Qwen-Image's model uses diffusers' module names,
  so the generic `diffusion_model.<module>` keys map directly; Z-Image (ComfyUI's Lumina2/NextDiT,
  fused `attention.qkv`) maps `diffusion_model.<diffusers module>` through `z_image_to_diffusers`,
  q/k/v onto their slices of the fused weight. `lora_A`/`lora_B` + `.alpha` is its "diffusers" LoRA
  form, scaled by alpha / rank.
- diffusers 0.42.1 (`QwenImageLoraLoaderMixin` / `ZImageLoraLoaderMixin.lora_state_dict`): keys
  starting `diffusion_model.` or ending `.alpha` go through `_convert_non_diffusers_{qwen,z_image}_
  lora_to_diffusers`, which folds alpha / rank into the weights (tests/models/test_flow_export.py
  checks the pixels match the diffusers file's).

Only the transformer's adapter is written: a flow family's text-encoder adapter is a PEFT folder
(models/lora.TEXT_ADAPTER) that neither reader takes in this layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coverforge.errors import CoverforgeError
from coverforge.models.families import family_of

PREFIX = "diffusion_model."
_MARKERS = (".lora_A.weight", ".lora_B.weight")


def to_comfyui(state: dict[str, torch.Tensor], alpha: float, denoiser: str = "transformer") -> dict[str, torch.Tensor]:
    """diffusers keys (`transformer.<module>.lora_A/B.weight`) -> ComfyUI keys, one alpha per module."""
    out = {}
    for key, tensor in state.items():
        prefix, _, rest = key.partition(".")
        marker = next((m for m in _MARKERS if rest.endswith(m)), None)
        if prefix != denoiser or marker is None:
            raise CoverforgeError(f"unexpected LoRA key {key!r}: not a diffusers/PEFT {denoiser} LoRA weight")
        module = PREFIX + rest[: -len(marker)]
        out[module + marker] = tensor.contiguous()
        out[module + ".alpha"] = torch.tensor(float(alpha))
    return out


def lora_alpha(meta: dict[str, str], lora_file: Path, denoiser: str = "transformer") -> float:
    """The adapter's alpha from the file's peft metadata (exact), else from the training config.

    A single alpha per file is what this layout writes: per-module rank/alpha patterns, rsLoRA's
    alpha / sqrt(rank) and DoRA have no place in it, so such an adapter is refused.
    """
    raw = meta.get("lora_adapter_metadata")
    if raw:
        peft = json.loads(raw)
        get = lambda name: peft.get(f"{denoiser}.{name}")  # noqa: E731
        if get("rank_pattern") or get("alpha_pattern") or get("use_rslora") or get("use_dora"):
            raise CoverforgeError(f"{lora_file}: per-module rank/alpha, rsLoRA or DoRA adapters have no ComfyUI "
                                  "'.alpha' equivalent; use --format diffusers")
        if get("lora_alpha") is not None:
            return float(get("lora_alpha"))
    config = meta.get("coverforge_config")
    if config:
        import tomllib

        return float(tomllib.loads(config)["lora"]["alpha"])
    raise CoverforgeError(f"{lora_file} names no LoRA alpha (no peft or coverforge metadata): was it written by `coverforge train`?")


def export_comfyui(lora_file: str | Path, out: str | Path) -> Path:
    """Convert a coverforge (diffusers) flow-family LoRA file to ComfyUI keys; family from its metadata."""
    lora_file = Path(lora_file)
    with safe_open(str(lora_file), "pt") as f:
        meta = f.metadata() or {}
    family = meta.get("family")
    if not family:
        raise CoverforgeError(f"{lora_file} has no coverforge metadata (family): was it written by `coverforge train`?")
    f = family_of(family)
    if not f.has_flow:
        raise CoverforgeError(f"--format comfyui writes the flow families' layout; this is an {family} LoRA: "
                              "use --format kohya (ComfyUI reads kohya keys for SD models)")
    state = to_comfyui(load_file(lora_file), lora_alpha(meta, lora_file, f.denoiser), f.denoiser)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"format": "pt", "family": family})
    return out
