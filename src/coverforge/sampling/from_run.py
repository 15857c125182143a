"""Build a `Generator` from a run folder, or from a base model plus an optional LoRA file."""

from __future__ import annotations

from pathlib import Path

from coverforge.config import Config, TextConfig, load_config
from coverforge.errors import CoverforgeError
from coverforge.models.lora import load_lora_into
from coverforge.models.loading import load_model
from coverforge.run_folder import RunFolder
from coverforge.sampling.generate import Generator


def is_run_folder(path: str | Path) -> bool:
    return RunFolder(path).is_finished()


def load_run_generator(run_dir: str | Path, lora_scale: float = 1.0, fuse: bool = False, base: bool = False) -> tuple[Generator, Config]:
    """The trained model of a run (LoRA on its base model, or the saved full/scratch model).

    base=True gives the untrained base model with the run's text settings (for --compare-base).
    """
    run = RunFolder(run_dir).require_finished()
    cfg = load_config(run.config)
    if cfg.train.recipe == "lora":
        parts = load_model(cfg.model.path, cfg.model.family, cfg.model.config_folder, cfg.model.allow_pickle)
        if not base:
            load_lora_into(parts, run.final_lora, lora_scale, fuse)
            parts.predicting(cfg.train.prediction_type)
    else:
        if base and cfg.train.recipe == "scratch":
            raise CoverforgeError("a from-scratch run has no base model to compare with")
        parts = load_model(cfg.model.path if base else str(run.final_model))
    return Generator.from_parts(parts, cfg.text), cfg


def load_model_generator(model: str, lora: str | None = None, lora_scale: float = 1.0, fuse: bool = False,
                         text: TextConfig | None = None, config_folder: str = "", allow_pickle: bool = False) -> Generator:
    parts = load_model(model, config_folder=config_folder, allow_pickle=allow_pickle)
    if lora:
        if not Path(lora).exists():
            raise CoverforgeError(f"LoRA file {lora} does not exist")
        load_lora_into(parts, lora, lora_scale, fuse)
        trained = lora_training_config(lora)
        if trained is not None:
            # Sample the way the LoRA was trained: its prediction target and its text settings
            # (clip skip, pooled mode, prompt length) unless the caller chose text settings.
            parts.predicting(trained.train.prediction_type)
            text = text or trained.text
    return Generator.from_parts(parts, text)


def lora_training_config(lora: str | Path) -> Config | None:
    """The training config `coverforge train` wrote into a LoRA file's metadata (None for other LoRAs)."""
    import tomllib

    from safetensors import safe_open

    from coverforge.config import config_from_dict
    from coverforge.models.lora import LORA_WEIGHTS

    path = Path(lora) / LORA_WEIGHTS if Path(lora).is_dir() else Path(lora)
    with safe_open(str(path), "pt") as f:
        saved = (f.metadata() or {}).get("coverforge_config")
    return config_from_dict(tomllib.loads(saved)) if saved else None


def load_checkpoint_generator(checkpoint: str | Path) -> Generator:
    """The model as it was at a training checkpoint (raw trained weights, not EMA)."""
    from coverforge.training.checkpoint import CONFIG, load_checkpoint
    from coverforge.training.recipe import apply_recipe, build_parts, load_trained_state

    checkpoint = Path(checkpoint)
    cfg = load_config(checkpoint / CONFIG)
    parts = build_parts(cfg)
    trained = apply_recipe(parts, cfg)
    state, _, _ = load_checkpoint(checkpoint)
    load_trained_state(trained, state)
    parts.predicting(cfg.train.prediction_type)
    for part in trained:
        part.module.eval()
    return Generator.from_parts(parts, cfg.text)
