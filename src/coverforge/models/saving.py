"""Write a complete model folder in the diffusers layout (full fine-tunes, from-scratch models)."""

from __future__ import annotations

import json
from pathlib import Path

from coverforge.models.loading import ModelParts
from coverforge.models.tokenizer import save_tokenizer
from coverforge.models.families import family_of

PIXEL_PIPELINE = "CoverforgePixelPipeline"


def save_model_folder(parts: ModelParts, out: str | Path) -> Path:
    """Every component as safetensors + configs, and a model_index.json naming them."""
    from diffusers import DDPMScheduler

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if family_of(parts.family).has_flow:
        return _save_flow_folder(parts, out)
    if parts.vae is None:
        cls = PIXEL_PIPELINE
    else:
        cls = family_of(parts.family).pipeline
    index: dict = {"_class_name": cls, "_diffusers_version": "0.42.1"}
    modules = {"unet": parts.unet, "vae": parts.vae, "text_encoder": parts.text_encoder, "text_encoder_2": parts.text_encoder_2}
    for name, module in modules.items():
        if module is None:
            continue
        module.save_pretrained(out / name, safe_serialization=True)
        lib = "transformers" if name.startswith("text_encoder") else "diffusers"
        index[name] = [lib, type(module).__name__]
    for name, tok in (("tokenizer", parts.tokenizer), ("tokenizer_2", parts.tokenizer_2)):
        if tok is not None:
            save_tokenizer(tok, out / name)
            index[name] = ["transformers", "CLIPTokenizer"]
    scheduler = DDPMScheduler.from_config(parts.scheduler_config)
    scheduler.save_pretrained(out / "scheduler")
    index["scheduler"] = ["diffusers", type(scheduler).__name__]
    if family_of(parts.family).safety_checker_slots and parts.vae is not None:
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
    (out / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return out


def _save_flow_folder(parts: ModelParts, out: Path) -> Path:
    """The flow families' folder is their stock pipeline's own `save_pretrained` (any class, config
    and tokenizer file it writes, the stock loader reads)."""
    from coverforge.models.bpe_tokenizer import save_qwen_tokenizer
    from coverforge.models.lora import pipeline_from_parts

    pipeline_from_parts(parts).save_pretrained(out, safe_serialization=True)
    save_qwen_tokenizer(parts.tokenizer, out / "tokenizer")
    return out
