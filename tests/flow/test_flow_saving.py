"""Flow families, saving: a run's final LoRA loads into the stock pipeline with `load_lora_weights`
and draws what `coverforge generate --run` draws; the text encoder's adapter folder round-trips; a
full fine-tune's final/model is a folder the stock `from_pretrained` and `generate --model` load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from coverforge.cli.main import main
from coverforge.training import loop
from flow_kit import FAMILIES, PROMPT, flow_config, pixels, stock_images, stock_pipeline

# High rates, so a few steps change the images visibly (what is compared must differ from the base).
RUNS = {
    "lora": {"recipe": "lora", "lr_unet": 3e-2},
    "lora+text": {"recipe": "lora", "lr_unet": 3e-2, "train_text_encoder": True, "lr_text_encoder": 3e-2},
    "full": {"recipe": "full", "lr_unet": 3e-3},
}
STEPS = ["--steps", "3", "--width", "32", "--height", "48", "--guidance", "1", "--seed", "4", "--prompt", PROMPT]


@pytest.fixture(scope="module")
def runs(flow_models, flow_dataset, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """One short run per family and recipe, trained once for this module."""
    root = tmp_path_factory.mktemp("flow-saving")
    out = {}
    for family in FAMILIES:
        for name, train in RUNS.items():
            run = root / f"{family}-{name}"
            cfg = flow_config(flow_models[family], flow_dataset, train={"max_steps": 3, **train}, text={"max_tokens": 64},
                              run={"checkpoint_every": 3})
            loop.train(cfg, run, progress=False)
            out[family, name] = run
    return out


def generated(args: list[str], out: Path, capsys) -> np.ndarray:
    code = main(["generate", *args, *STEPS, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    (png,) = sorted(out.glob("00000-*-seed4.png"))
    return pixels(png)


def stock(pipe, family: str) -> np.ndarray:
    (image,) = stock_images(pipe, family, [PROMPT], 4, steps=3, width=32, height=48)
    return pixels(image)


@pytest.mark.parametrize("recipe", ["lora", "lora+text"])
@pytest.mark.parametrize("family", FAMILIES)
def test_final_lora_in_the_stock_pipeline_draws_what_generate_run_draws(flow_models, runs, family, recipe, tmp_path, capsys):
    run = runs[family, recipe]
    ours = generated(["--run", str(run)], tmp_path / "out", capsys)
    pipe = stock_pipeline(flow_models[family], family)
    base = stock(pipe, family)
    pipe.load_lora_weights(run / "final" / "lora")
    if recipe == "lora+text":
        # The stock pipelines load the transformer's LoRA only; the text encoder's is a PEFT adapter folder.
        assert pipe.lora_state_dict(run / "final" / "lora").keys() == load_file(run / "final" / "lora" / "pytorch_lora_weights.safetensors").keys()
        pipe.text_encoder.load_adapter(str(run / "final" / "lora" / "text_encoder"))
    theirs = stock(pipe, family)
    assert not np.array_equal(theirs, base)  # the LoRA changes the image...
    assert np.array_equal(ours, theirs)  # ...and the stock pipeline draws exactly what coverforge draws


@pytest.mark.parametrize("family", FAMILIES)
def test_text_encoder_adapter_folder_round_trips(flow_models, runs, family):
    from peft.utils import get_peft_model_state_dict

    run = runs[family, "lora+text"]
    folder = run / "final" / "lora" / "text_encoder"
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    trained = load_file(run / "checkpoints" / "step-00000003" / "trained.safetensors")
    trained = {k.removeprefix("text_encoder.").replace(".default.", "."): v for k, v in trained.items() if k.startswith("text_encoder.")}
    encoder = stock_pipeline(flow_models[family], family).text_encoder
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.load_adapter(str(folder))
    loaded = get_peft_model_state_dict(encoder)
    assert loaded.keys() == trained.keys() and trained
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    assert any(v.abs().sum() > 0 for k, v in loaded.items() if "lora_B" in k)  # trained, not the zero init
    # The adapter sits beside the base weights and leaves them as they were.
    after = {k.replace(".base_layer.", "."): v for k, v in encoder.state_dict().items() if "lora_" not in k}
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("family", FAMILIES)
def test_full_fine_tune_folder_loads_in_the_stock_pipeline_and_generate_model(flow_models, runs, family, tmp_path, capsys):
    model = runs[family, "full"] / "final" / "model"
    ours = generated(["--model", str(model)], tmp_path / "model", capsys)
    from_run = generated(["--run", str(runs[family, "full"])], tmp_path / "run", capsys)
    theirs = stock(stock_pipeline(model, family), family)
    base = stock(stock_pipeline(flow_models[family], family), family)
    assert not np.array_equal(theirs, base)
    assert np.array_equal(ours, theirs) and np.array_equal(from_run, theirs)
