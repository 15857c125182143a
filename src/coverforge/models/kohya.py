"""LoRA weights in the kohya / A1111 / ComfyUI key format.

diffusers/PEFT `unet.<module>.lora_A.weight` becomes `lora_unet_<module with _>.lora_down.weight`
(+ `.alpha`), text encoders `lora_te_` (SD 1.x/2.x) or `lora_te1_` / `lora_te2_` (SDXL) over the
`text_model.` module path, as kohya's sd-scripts name them. SDXL UNet modules take the original
UNet's names (`lora_unet_input_blocks_4_1_...`: kohya's SDXL network is built on that UNet; see
sgm_names.py); SD 1.x/2.x keep diffusers' (kohya's SD 1.x network is built on diffusers' UNet).
diffusers' own loader reads the result back (`pipe.load_lora_weights`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coverforge.errors import CoverforgeError
from coverforge.models.sgm_names import SDXL_LAYOUT, sgm_module_name, unet_layout
from coverforge.models.families import family_of


# diffusers writes PEFT names (lora_A/B) and, after convert_state_dict_to_diffusers, its older
# names for attention (lora.down/up) and text-encoder layers (lora_linear_layer.down/up).
_MARKERS = (
    (".lora_A.weight", "lora_down"), (".lora_B.weight", "lora_up"),
    (".lora.down.weight", "lora_down"), (".lora.up.weight", "lora_up"),
    (".lora_linear_layer.down.weight", "lora_down"), (".lora_linear_layer.up.weight", "lora_up"),
)


def _kohya_module(prefix: str, module: str, family: str, layout) -> str:
    if prefix == "unet":
        original = family_of(family).kohya_unet_original_names
        return "lora_unet_" + (sgm_module_name(module, *layout) if original else module).replace(".", "_")
    if not module.startswith("text_model."):
        module = "text_model." + module
    f = family_of(family)
    te = dict(zip(f.text_encoders, f.kohya_text_prefixes))[prefix]
    return f"lora_{te}_" + module.replace(".", "_")


def to_kohya(state: dict[str, torch.Tensor], family: str, alpha: float, layout=SDXL_LAYOUT) -> dict[str, torch.Tensor]:
    """layout: (layers_per_block, per up level: has attention) of the SDXL UNet (see sgm_names)."""
    out = {}
    for key, tensor in state.items():
        prefix, rest = key.split(".", 1)
        for marker, kind in _MARKERS:
            if rest.endswith(marker):
                name = _kohya_module(prefix, rest[: -len(marker)], family, layout)
                out[f"{name}.{kind}.weight"] = tensor.contiguous()
                out[f"{name}.alpha"] = torch.tensor(float(alpha))
                break
        else:
            raise CoverforgeError(f"unexpected LoRA key {key!r}: not a diffusers/PEFT LoRA weight")
    return out


def export_kohya(lora_file: str | Path, out: str | Path) -> Path:
    """Convert a coverforge (diffusers) LoRA file to kohya keys; alpha and family from its metadata."""
    lora_file = Path(lora_file)
    with safe_open(str(lora_file), "pt") as f:
        meta = f.metadata() or {}
    family = meta.get("family")
    config = meta.get("coverforge_config")
    if not family or not config:
        raise CoverforgeError(f"{lora_file} has no coverforge metadata (family, config): was it written by `coverforge train`?")
    import tomllib

    alpha = float(tomllib.loads(config)["lora"]["alpha"])
    state = to_kohya(load_file(lora_file), family, alpha, _base_layout(meta.get("base_model", "")))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"ss_network_module": "networks.lora", "ss_network_alpha": str(alpha), "family": family})
    return out


def _base_layout(base_model: str):
    """The base UNet's block layout from its local config; the real SDXL's when it cannot be read
    (a hub id or single file: every released SDXL shares that layout)."""
    import json

    config = Path(base_model) / "unet" / "config.json" if base_model else None
    if config is not None and config.is_file():
        return unet_layout(json.loads(config.read_text()))
    return SDXL_LAYOUT
