"""Validation images during training: the same generation function as `coverforge generate`."""

from __future__ import annotations

from pathlib import Path

from coverforge.config import Config
from coverforge.image_grid import image_grid
from coverforge.sampling.generate import Generator, generate


def sample_validation(gen: Generator, cfg: Config, out_dir: Path, step: int) -> Path | None:
    """One image per (prompt, seed), saved as a grid: rows are prompts, columns seeds."""
    s = cfg.sample
    if not s.prompts:
        return None
    prompts = [p for p in s.prompts for _ in s.seeds]
    seeds = [seed for _ in s.prompts for seed in s.seeds]
    images = generate(gen, prompts, seeds, s)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"step-{step:08d}.png"
    labels = [f"seed {seed}: {prompt}" for prompt, seed in zip(prompts, seeds)]
    image_grid(images, cols=len(s.seeds), labels=labels, cell=max(images[0].size)).save(path)
    return path
