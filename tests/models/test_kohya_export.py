"""kohya-format export: keys as kohya/A1111/ComfyUI name them, and diffusers loads it back to the same images."""

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coverforge.cli.main import main
from coverforge.config import config_from_dict
from coverforge.sampling.from_run import load_model_generator, load_run_generator
from coverforge.sampling.generate import generate
from coverforge.training.loop import train


def _trained_run(tmp_path, tiny_models, colour_dataset, family):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models[family])}, "data": {"dataset": str(colour_dataset), "resolution": 64},
        "train": {"recipe": "lora", "max_steps": 2, "batch_size": 2, "train_text_encoder": True,
                  "train_text_encoder_2": family == "sdxl"},
        "lora": {"rank": 4, "alpha": 8},
    })
    run = tmp_path / f"run-{family}"
    train(cfg, run, progress=False)
    # Two steps barely move LoRA's zero-initialised B; give every adapter weight a visible size so
    # the comparison below can tell a lost or mis-scaled adapter from a faithful one.
    path = run / "final" / "lora" / "pytorch_lora_weights.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in load_file(path).items()}
    save_file(state, str(path), metadata=meta)
    return run


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_kohya_export_round_trip(tmp_path, tiny_models, colour_dataset, family):
    run = _trained_run(tmp_path, tiny_models, colour_dataset, family)
    out = tmp_path / "kohya.safetensors"
    assert main(["export", str(run), "--format", "kohya", "--out", str(out)]) == 0
    keys = list(load_file(out))
    te = "lora_te1_" if family == "sdxl" else "lora_te_"
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys)
    assert any(k.startswith(te + "text_model_encoder_layers_0_") for k in keys)
    assert all(k.startswith(("lora_unet_", "lora_te")) for k in keys)
    assert (family == "sdxl") == any(k.startswith("lora_te2_") for k in keys)
    assert all(load_file(out)[k].item() == 8.0 for k in keys if k.endswith(".alpha"))

    prompt, seeds = ["Book cover. Genres: red."], [3]
    ours = np.asarray(generate(load_run_generator(run)[0], prompt, seeds, steps=3)[0]).astype(int)
    kohya = np.asarray(generate(load_model_generator(str(tiny_models[family]), lora=str(out)), prompt, seeds, steps=3)[0]).astype(int)
    base = np.asarray(generate(load_model_generator(str(tiny_models[family])), prompt, seeds, steps=3)[0]).astype(int)
    assert np.abs(ours - base).max() > 20, "the adapter must change the image for this test to mean anything"
    assert np.abs(ours - kohya).max() <= 2  # same weights; only float rounding of the alpha/rank scale differs


def test_export_refuses_a_folder_without_lora(tmp_path):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 2
