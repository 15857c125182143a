"""`coverforge generate --run RUN`: PNGs that carry their parameters, reproducible seeds, --compare-base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverforge.cli.main import main
from coverforge.config import SampleConfig, config_from_dict
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
    expected = generate(load_model_generator(str(tiny_models["sd15"])), PROMPTS, [7, 8], SampleConfig(steps=3, guidance_scale=5.0))
    for i, image in enumerate(expected):
        assert np.array_equal(pixels(out / f"{i:05d}-base-seed{7 + i}.png"), np.asarray(image, dtype=np.int16))


def _run_sampling_with(run: Path, tmp_path: Path, **sample) -> Path:
    """A copy of `run` whose config asks for other generation settings (no retraining needed)."""
    import dataclasses
    import shutil

    from coverforge.config import load_config, to_toml
    from coverforge.run_folder import RunFolder

    copy = tmp_path / "run-copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints"))
    cfg = load_config(RunFolder(copy).config)
    cfg.sample = dataclasses.replace(cfg.sample, **sample)
    RunFolder(copy).config.write_text(to_toml(cfg))
    return copy


def _params(path: Path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.text["coverforge"]) | {"size": im.size}


def test_generate_starts_from_the_runs_own_sample_settings_then_overrides_then_flags(lora_run, tmp_path):
    """One SampleConfig travels whole: the run's [sample] section, `sample.*` overrides, then the flags."""
    run = _run_sampling_with(lora_run, tmp_path, sampler="ddim", steps=2, guidance_scale=3.0, width=32, height=48)
    assert main(["generate", "--run", str(run), "--out", str(tmp_path / "a"), "--prompt", PROMPTS[0]]) == 0
    got = _params(tmp_path / "a" / "00000-tuned-seed0.png")
    assert (got["sampler"], got["steps"], got["guidance_scale"], got["size"]) == ("ddim", 2, 3.0, (32, 48))
    assert main(["generate", "--run", str(run), "--out", str(tmp_path / "b"), "--prompt", PROMPTS[0],
                 "sample.steps=4", "sample.sampler=euler", "--steps", "3"]) == 0
    got = _params(tmp_path / "b" / "00000-tuned-seed0.png")
    assert (got["sampler"], got["steps"], got["guidance_scale"]) == ("euler", 3, 3.0)  # the flag beat the override


@pytest.mark.parametrize("override,words", [("train.max_steps=3", "sample.* settings only"),
                                            ("sample.stepz=3", "did you mean sample.steps"),
                                            ("sample.steps=0", "sample.steps")])
def test_a_bad_sample_override_is_one_line_before_any_model_loads(lora_run, tmp_path, capsys, override, words):
    assert main(["generate", "--run", str(lora_run), "--out", str(tmp_path / "o"), "--prompt", "x", override]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
