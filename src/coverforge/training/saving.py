"""The inference artefact at the end of a run, separate from the checkpoints: LoRA weights in
the diffusers format (config in their metadata), or a complete diffusers model folder."""

from __future__ import annotations

from pathlib import Path

from coverforge.config import Config, to_toml
from coverforge.models.lora import save_lora
from coverforge.models.saving import save_model_folder
from coverforge.run_folder import RunFolder


def save_final(parts_obj, trained, cfg: Config, run_dir: Path, accelerator) -> Path:
    out = RunFolder(run_dir).final_weights(cfg.train.recipe)
    modules = {p.name: accelerator.unwrap_model(p.module) for p in trained}
    if cfg.train.recipe == "lora":
        save_lora(out, parts_obj.family, modules.get("unet"), modules.get("text_encoder"), modules.get("text_encoder_2"),
                  metadata={"coverforge_config": to_toml(cfg), "family": parts_obj.family, "base_model": cfg.model.path})
        return out
    return save_model_folder(parts_obj, out)
