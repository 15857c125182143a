"""Learning, not just running (issue 5): LoRA lowers the validation denoising loss of a tiny base,
and the from-scratch recipe learns text conditioning (generated colours follow the prompt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coverforge.config import SampleConfig, config_from_dict
from coverforge.data.layout import load_records
from coverforge.models.loading import load_model
from coverforge.sampling.from_run import load_run_generator
from coverforge.sampling.generate import generate
from coverforge.text.conditioning import TextConditioner
from coverforge.training import checkpoint as ckpt
from coverforge.training import loop
from coverforge.training.dataset import CoverDataset, collate
from coverforge.training.diffusion import target_for
from coverforge.training.recipe import apply_recipe, build_parts, load_trained_state
from scratch_kit import TINY_SCRATCH

COLOURS = {"red": (200, 40, 40), "blue": (40, 60, 200), "green": (40, 170, 60), "gold": (220, 180, 40)}


def prompt_for(name: str) -> str:
    return f'Book cover. Title: "A {name} book". Genres: {name}.'  # as conftest's colour dataset writes them


@torch.no_grad()
def validation_loss(parts, cfg, draws: int = 16, seed: int = 1234) -> float:
    """Mean denoising MSE on the validation split, same images, noise and timesteps every call."""
    from diffusers import DDPMScheduler

    for m in (parts.unet, parts.vae, *parts.text_encoders):
        m.eval()
    records = load_records(cfg.data.dataset, "validation")
    batch = collate([CoverDataset(records, cfg.data.resolution, False, step=64)[i] for i in range(len(records))])
    latents = parts.vae.encode(batch["pixels"]).latent_dist.mean * parts.vae.config.scaling_factor
    hidden = TextConditioner.from_parts(parts, cfg.text).encode(batch["prompts"]).hidden
    scheduler = DDPMScheduler.from_config(parts.scheduler_config)
    prediction = scheduler.config.prediction_type
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(draws):
        noise = torch.randn(latents.shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=g)
        pred = parts.unet(scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=hidden).sample
        losses.append(torch.nn.functional.mse_loss(pred, target_for(scheduler, latents, noise, t, prediction)).item())
    return float(np.mean(losses))


def test_lora_lowers_the_validation_denoising_loss(tiny_models, colour_dataset, tmp_path, capsys):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(colour_dataset), "resolution": 32, "buckets": False},
        "train": {"recipe": "lora", "max_steps": 40, "batch_size": 4, "lr_unet": 2e-3, "lr_schedule": "constant",
                  "warmup_ratio": 0.0, "checkpoint_every": 1000, "log_every": 10},
        "lora": {"rank": 8, "alpha": 8, "unet_preset": "attn+ff"},
    })
    before = validation_loss(load_model(cfg.model.path), cfg)
    run = tmp_path / "run"
    loop.train(cfg, run, progress=False)
    # The trained adapters as the final checkpoint holds them, on a fresh copy of the base.
    parts = build_parts(cfg)
    load_trained_state(apply_recipe(parts, cfg), ckpt.load_checkpoint(ckpt.resolve_checkpoint(run, "latest"))[0])
    after = validation_loss(parts, cfg)
    with capsys.disabled():
        print(f"\nLoRA validation denoising loss: base {before:.4f} -> trained {after:.4f}")
    assert after < 0.9 * before, f"validation loss {before:.4f} -> {after:.4f}: LoRA did not learn the new data"


def nearest_colour(image) -> str:
    mean = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(0)
    return min(COLOURS, key=lambda c: np.linalg.norm(mean - np.array(COLOURS[c])))


@pytest.mark.slow
def test_scratch_recipe_learns_text_conditioning(colour_dataset, tmp_path, capsys):
    cfg = config_from_dict({
        "model": dict(TINY_SCRATCH),
        "data": {"dataset": str(colour_dataset), "resolution": 16, "buckets": False, "caption_dropout": 0.1},
        # v-prediction: the colour is decided at high noise, where an epsilon target says little about it.
        # 800 steps: at 500 the accuracy was 0.56-0.81 over seeds 0-2 and flipped with float summation
        # order alone (per-tensor vs flat AdamW: 0.81 vs 0.69); at 800 it was 0.88-1.0.
        "train": {"recipe": "scratch", "max_steps": 800, "batch_size": 8, "lr_unet": 3e-3, "train_text_encoder": True,
                  "lr_text_encoder": 1.5e-3, "lr_schedule": "constant", "warmup_ratio": 0.0,
                  "prediction_type": "v_prediction", "checkpoint_every": 1000, "log_every": 25},
    })
    loop.train(cfg, tmp_path / "run", progress=False)
    gen, _ = load_run_generator(tmp_path / "run")
    names = [c for c in COLOURS for _ in range(4)]
    seeds = list(range(100, 100 + len(names)))
    made = generate(gen, [prompt_for(c) for c in names], seeds, SampleConfig(sampler="euler", steps=20, guidance_scale=5.0))
    predicted = [nearest_colour(im) for im in made]
    accuracy = float(np.mean([p == c for p, c in zip(predicted, names)]))
    with capsys.disabled():
        print(f"\nscratch colour accuracy: {accuracy:.2f} (chance 0.25); predicted {predicted}")
    assert accuracy >= 0.75, f"generated colours follow the prompt only {accuracy:.0%} of the time: {predicted}"
