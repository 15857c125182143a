"""A coverforge LoRA changes generation, its text-encoder part alone does too, and scale/fuse behave."""

import json

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coverforge.cli.main import main
from coverforge.config import SampleConfig, config_from_dict
from coverforge.sampling.from_run import load_model_generator, load_run_generator
from coverforge.sampling.generate import generate
from coverforge.training.loop import train

PROMPT, SEEDS = ["Book cover. Title: \"A red book\". Genres: red."], [5]


def _pixels(gen) -> np.ndarray:
    return np.asarray(generate(gen, PROMPT, SEEDS, SampleConfig(steps=3, guidance_scale=5.0))[0]).astype(int)


def _run(tmp_path, tiny_models, colour_dataset, train_unet: bool):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models["sd15"])}, "data": {"dataset": str(colour_dataset), "resolution": 64},
        "train": {"recipe": "lora", "max_steps": 2, "batch_size": 2, "train_unet": train_unet, "train_text_encoder": True},
        "lora": {"rank": 4, "alpha": 4},
    })
    run = tmp_path / ("unet+te" if train_unet else "te-only")
    train(cfg, run, progress=False)
    # Two steps leave LoRA's zero-initialised B near zero; give the adapters a visible size.
    path = run / "final" / "lora" / "pytorch_lora_weights.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    g = torch.Generator().manual_seed(1)
    save_file({k: torch.randn(v.shape, generator=g) * 0.3 for k, v in load_file(path).items()}, str(path), metadata=meta)
    return run


def test_text_encoder_lora_alone_changes_the_image(tmp_path, tiny_models, colour_dataset):
    run = _run(tmp_path, tiny_models, colour_dataset, train_unet=False)
    keys = list(load_file(run / "final" / "lora" / "pytorch_lora_weights.safetensors"))
    assert keys and all(k.startswith("text_encoder.") for k in keys)
    base = _pixels(load_model_generator(str(tiny_models["sd15"])))
    tuned = _pixels(load_run_generator(run)[0])
    assert np.abs(tuned - base).max() > 10


def test_lora_scale_and_fuse(tmp_path, tiny_models, colour_dataset):
    run = _run(tmp_path, tiny_models, colour_dataset, train_unet=True)
    lora = str(run / "final" / "lora")
    base = _pixels(load_model_generator(str(tiny_models["sd15"])))
    full = _pixels(load_run_generator(run)[0])
    half = _pixels(load_run_generator(run, lora_scale=0.5)[0])
    zero = _pixels(load_model_generator(str(tiny_models["sd15"]), lora=lora, lora_scale=0.0))
    fused = _pixels(load_model_generator(str(tiny_models["sd15"]), lora=lora, fuse=True))
    assert np.abs(full - base).max() > 10
    assert np.abs(zero - base).max() <= 1  # scale 0: the base model
    assert 0 < np.abs(half - base).mean() < np.abs(full - base).mean()
    assert np.abs(fused - full).max() <= 2  # merged weights: same image, up to float rounding


def test_generate_cli_from_model_and_lora_with_covers(tmp_path, tiny_models, colour_dataset):
    run = _run(tmp_path, tiny_models, colour_dataset, train_unet=True)
    out = tmp_path / "gen"
    code = main(["generate", "--model", str(tiny_models["sd15"]), "--lora", str(run / "final" / "lora"), "--prompt", PROMPT[0],
                 "--steps", "2", "--aspect", "2:3", "--covers", "--title", "The Red Book", "--author", "A. Writer",
                 "--cover-size", "320x512px", "--out", str(out)])
    assert code == 0
    images = sorted(out.glob("*-tuned-seed0.png"))
    assert len(images) == 1
    from PIL import Image

    im = Image.open(images[0])
    assert im.height > im.width  # 2:3 aspect at the model's pixel area
    params = json.loads(im.text["coverforge"])
    assert params["prompt"] == PROMPT[0] and params["lora_hash"]
    cover = Image.open(next((out / "covers").glob("*.png")))
    assert cover.size == (320, 512)
