"""Every shipped config loads, validates, and starts with the command that runs it."""

import json
from importlib import resources
from pathlib import Path

import pytest

from coverforge.config import load_config, to_toml, config_from_dict
import tomllib

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").glob("*.toml")) + [Path(str(resources.files("coverforge.configs") / "demo-scratch.toml"))]


def test_there_are_shipped_configs():
    names = {p.name for p in SHIPPED}
    for expected in ("sdxl-lora-covers.toml", "sd15-lora-covers.toml", "sd15-full-covers.toml", "scratch-tiny.toml", "demo-scratch.toml"):
        assert expected in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_loads_and_round_trips(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# coverforge "), f"{path.name} must start with the command that runs it"
    # dataset is left for the user; give one so validation runs on everything else.
    cfg = load_config(path, ["data.dataset=somewhere"])
    assert cfg.data.dataset == "somewhere"
    again = config_from_dict(tomllib.loads(to_toml(cfg)))
    assert again == cfg


def test_sdxl_recipe_matches_the_seed():
    cfg = load_config(ROOT / "configs" / "sdxl-lora-covers.toml")
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.lora.init) == (32, 32.0, "gaussian")
    assert cfg.lora.text_targets == ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
    assert (cfg.train.lr_unet, cfg.train.lr_text_encoder, cfg.train.lr_text_encoder_2) == (1e-4, 5e-5, 1e-5)
    assert (cfg.train.lr_schedule, cfg.train.warmup_ratio, cfg.train.max_grad_norm) == ("constant_with_warmup", 0.05, 1.0)
    assert cfg.text.max_tokens == 512


@pytest.mark.parametrize("name", ["debug-tiny-sd15-lora", "debug-tiny-sd2-lora", "debug-tiny-sdxl-lora", "debug-tiny-scratch",
                                  "debug-tiny-qwen-image-lora", "debug-tiny-z-image-lora"])
def test_debug_configs_train_end_to_end(name, tmp_path, tiny_models, colour_dataset):
    from coverforge.training.loop import train

    overrides = [f"data.dataset={json.dumps(str(colour_dataset))}", "train.max_steps=2"]
    if "scratch" not in name:
        from coverforge.models.tiny import write_tiny_model

        family = name.removeprefix("debug-tiny-").removesuffix("-lora")
        model = tiny_models[family] if family in tiny_models else write_tiny_model(family, tmp_path / family, seed=0)
        overrides.append(f"model.path={json.dumps(str(model))}")
    cfg = load_config(ROOT / "configs" / f"{name}.toml", overrides)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.step == 2
    assert (tmp_path / "run" / "final").is_dir() and list((tmp_path / "run" / "samples").glob("*.png"))
