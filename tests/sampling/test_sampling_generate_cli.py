"""`coverforge generate --run RUN`: PNGs that carry their parameters, reproducible seeds, --compare-base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.config import config_from_dict
from coverforge.sampling.from_run import load_model_generator
from coverforge.sampling.generate import generate
from coverforge.training.loop import train

PROMPTS = ["a red book", "a blue book about the sea"]


@pytest.fixture(scope="module")
def lora_run(tiny_models, colour_dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gen") / "run"
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(colour_dataset), "resolution": 32, "buckets": False},
        # A high rate so the fine-tuned images differ visibly from the base model's.
        "train": {"recipe": "lora", "max_steps": 3, "batch_size": 2, "train_text_encoder": True, "lr_unet": 1e-2,
                  "lr_text_encoder": 1e-2, "checkpoint_every": 100},
        "lora": {"rank": 4, "alpha": 4},
    })
    train(cfg, run, progress=False)
    return run


def generate_cli(run: Path, out: Path, *extra: str) -> int:
    args = ["generate", "--run", str(run), "--out", str(out), "--steps", "3", "--seed", "7"]
    for p in PROMPTS:
        args += ["--prompt", p]
    return main(args + list(extra))


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def test_generate_writes_pngs_with_their_parameters(lora_run, tmp_path):
    out = tmp_path / "out"
    assert generate_cli(lora_run, out) == 0
    pngs = sorted(out.glob("0*.png"))
    assert [p.name for p in pngs] == ["00000-tuned-seed7.png", "00001-tuned-seed8.png"]
    for i, path in enumerate(pngs):
        with Image.open(path) as im:
            assert im.size == (64, 64)
            text = dict(im.text)
        params = json.loads(text["coverforge"])
        assert params["prompt"] == PROMPTS[i] and params["seed"] == 7 + i and params["steps"] == 3
        assert text["parameters"].startswith(PROMPTS[i]) and f"Seed: {7 + i}" in text["parameters"]
        assert params["lora_hash"]  # the run's LoRA is named in the file
    assert (out / "contact-tuned.png").exists()


def test_same_seed_gives_the_same_image_across_calls(lora_run, tmp_path):
    assert generate_cli(lora_run, tmp_path / "a") == 0
    assert generate_cli(lora_run, tmp_path / "b") == 0
    for name in ("00000-tuned-seed7.png", "00001-tuned-seed8.png"):
        assert np.array_equal(pixels(tmp_path / "a" / name), pixels(tmp_path / "b" / name))
    # ...and a different seed gives a different image.
    assert main(["generate", "--run", str(lora_run), "--out", str(tmp_path / "c"), "--steps", "3", "--seed", "9",
                 "--prompt", PROMPTS[0]]) == 0
    assert not np.array_equal(pixels(tmp_path / "c" / "00000-tuned-seed9.png"), pixels(tmp_path / "a" / "00000-tuned-seed7.png"))


def test_compare_base_writes_both_variants(lora_run, tiny_models, tmp_path):
    out = tmp_path / "out"
    assert generate_cli(lora_run, out, "--compare-base") == 0
    for i, seed in enumerate((7, 8)):
        tuned, base = out / f"{i:05d}-tuned-seed{seed}.png", out / f"{i:05d}-base-seed{seed}.png"
        with Image.open(base) as im:
            params = json.loads(im.text["coverforge"])
        assert params["variant"] == "base" and params["seed"] == seed and params["lora_hash"] == ""
        assert np.abs(pixels(tuned) - pixels(base)).mean() > 0.5, "the fine-tuned and base images are the same"
    assert (out / "contact-tuned.png").exists() and (out / "contact-base.png").exists()
    # The base variant is the untouched base model, same seeds, same sampler.
    expected = generate(load_model_generator(str(tiny_models["sd15"])), PROMPTS, [7, 8], steps=3, guidance_scale=5.0)
    for i, image in enumerate(expected):
        assert np.array_equal(pixels(out / f"{i:05d}-base-seed{7 + i}.png"), np.asarray(image, dtype=np.int16))
