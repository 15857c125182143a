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


@torch.no_grad()
def fixed_batch_loss(parts, cfg, sigmas=(0.3, 0.6, 0.9), seed=1234) -> float:
    """The flow-matching loss of `parts` on every training cover of `cfg`'s dataset at fixed sigmas
    and fixed noise, with no caption dropout: the same numbers before and after training, so a
    drop is the training's doing, not a lucky draw of noise levels."""
    from coverforge.data.layout import load_records
    from coverforge.models.families import family_of
    from coverforge.models.latent_codec import LatentCodec
    from coverforge.text.conditioners import conditioner_from_parts
    from coverforge.training.flow_matching import noisy_latents, velocity_target
    from coverforge.training.inputs import make_dataset

    for m in (parts.unet, parts.vae, parts.text_encoder):
        m.eval()
    flow = family_of(parts.family).flow
    dataset = make_dataset(cfg, parts, load_records(cfg.data.dataset))
    items = dataset.load_batch(list(range(len(dataset))), decode_only=True)
    codec = LatentCodec.for_parts(parts)
    gen = torch.Generator().manual_seed(seed)
    latents = codec.latents(codec.posterior(torch.stack([i["pixels"] for i in items])), gen)
    cond = conditioner_from_parts(parts, cfg.text).encode([i["prompt"] for i in items])
    losses = []
    for s in sigmas:
        noise = torch.randn(latents.shape, generator=gen)
        sig = torch.full((latents.shape[0],), s)
        pred = flow.predict(parts.unet, noisy_latents(latents, noise, sig), sig, cond.hidden, cond.mask)
        losses.append(torch.mean((pred - velocity_target(latents, noise)) ** 2).item())
    return float(np.mean(losses))
