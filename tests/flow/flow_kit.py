"""Helpers of the flow-family stage tests (tests/flow): the stock pipelines' own way to call them,
small training configs, long prompts. (A module of its own: `conftest` names several files.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

FAMILIES = ("qwen-image", "z-image")
PROMPT = 'Book cover. Title: "Glass Harbour". Author: Tomas Verne. Genres: Mystery.'
OTHER_PROMPT = 'Book cover. Title: "The Salt Road". Author: Mara Ellison. Genres: Fantasy, Adventure. A girl walks the desert.'
BLURB = (
    "A girl walks the old salt road across the desert to find the father who never came home; in a harbour "
    "town of glass and fog, a detective follows a letter written by a woman who died ten years ago. "
)


def write_colour_dataset(root: Path, **kw) -> Path:
    """tests/conftest.write_colour_dataset, read by path (the name `conftest` is taken here)."""
    spec = importlib.util.spec_from_file_location("coverforge_tests_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_colour_dataset(root, **kw)


def stock_pipeline(folder: Path, family: str):
    """The family's stock diffusers pipeline, loaded the way a user loads it."""
    from coverforge.models.families import family_of

    pipe = family_of(family).pipeline_class().from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stock_images(pipe, family: str, prompts: list[str], seed: int, guidance: float = 1.0, negative: str | None = None,
                 steps: int = 3, width: int = 32, height: int = 32) -> list[Image.Image]:
    """The stock pipeline's images, one generator per prompt seeded seed, seed + 1, ... Guidance is
    coverforge's scale (1 = none): Qwen-Image's true_cfg_scale is that scale, Z-Image's
    guidance_scale is it minus one (its CFG is pos + g (pos - neg))."""
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    kw = dict(num_inference_steps=steps, width=width, height=height, generator=generators, output_type="pil")
    if family == "qwen-image":
        kw.update(true_cfg_scale=guidance, max_sequence_length=1024)
        if guidance > 1:
            kw["negative_prompt"] = [negative or ""] * len(prompts)
    else:
        kw.update(guidance_scale=guidance - 1 if guidance > 1 else 0.0)
        if guidance > 1:
            kw["negative_prompt"] = [negative or ""] * len(prompts)
    return pipe(prompts, **kw).images


def pixels(image) -> np.ndarray:
    if isinstance(image, (str, Path)):
        with Image.open(image) as im:
            return np.asarray(im.convert("RGB"), dtype=np.int16)
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def long_prompt(tokenizer, min_tokens: int) -> str:
    """A book prompt whose blurb repeats until the prompt alone is at least `min_tokens` tokens."""
    prompt = OTHER_PROMPT + " "
    while len(tokenizer(prompt).input_ids) < min_tokens:
        prompt += BLURB
    return prompt


def flow_config(model: Path, dataset: Path, *, train: dict | None = None, run: dict | None = None, data: dict | None = None,
                text: dict | None = None, lora: dict | None = None, sample: dict | None = None):
    """A small training config on a tiny flow model: 32-px covers (4x4 latents, 2x2 patches), batch 4."""
    from coverforge.config import config_from_dict

    return config_from_dict({
        "model": {"path": str(model)},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": False, **(data or {})},
        "train": {"recipe": "lora", "batch_size": 4, "max_steps": 3, "lr_unet": 1e-3, "warmup_ratio": 0.0, **(train or {})},
        "run": {"checkpoint_every": 100, "log_every": 1, "log_with": "none", **(run or {})},
        "text": {**(text or {})},
        "lora": {"rank": 4, "alpha": 4, **(lora or {})},
        "sample": {**(sample or {})},
    })


def metrics(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows}
