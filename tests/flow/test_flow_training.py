"""Flow families, training: LoRA (transformer, transformer + text encoder) and full fine-tuning lower
the loss and move only what they train; caches change nothing; resume is bit-exact; per-part
learning rates, gradient checkpointing and aspect buckets; DDPM-only settings refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from safetensors.torch import load_file

from coverforge.cache.build import build_caches
from coverforge.cli.main import main
from coverforge.config import to_toml
from coverforge.data.layout import load_records
from coverforge.models.families import family_of
from coverforge.models.latent_codec import LatentCodec
from coverforge.models.loading import load_model
from coverforge.models.lora import load_lora_into
from coverforge.text.conditioners import conditioner_from_parts
from coverforge.training import loop
from coverforge.training.inputs import make_dataset, prepare_inputs
from flow_kit import FAMILIES, PROMPT, fixed_batch_loss, flow_config, metrics, write_colour_dataset

# Z-Image pads every prompt to the text limit: 64 tokens instead of 512 keeps a trained text encoder fast.
SHORT_TEXT = {"max_tokens": 64}
RECIPES = {
    "lora-transformer": {"recipe": "lora", "lr_unet": 1e-2},
    "lora-transformer+text": {"recipe": "lora", "lr_unet": 1e-2, "train_text_encoder": True, "lr_text_encoder": 1e-2},
    "full": {"recipe": "full", "lr_unet": 1e-3},
}


def safetensors_of(folder: Path) -> dict[str, torch.Tensor]:
    (file,) = folder.glob("*.safetensors")
    return load_file(file)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_training_lowers_the_loss_and_moves_only_what_it_trains(flow_models, flow_dataset, family, recipe, tmp_path):
    base = flow_models[family]
    cfg = flow_config(base, flow_dataset, train={"max_steps": 10, **RECIPES[recipe]}, text=SHORT_TEXT)
    before = fixed_batch_loss(load_model(str(base)), cfg)
    loop.train(cfg, tmp_path / "run", progress=False)
    final = tmp_path / "run" / "final"
    if recipe == "full":
        trained = load_model(str(final / "model"))
        assert not (final / "lora").exists()
        tuned, stock = safetensors_of(final / "model" / "transformer"), safetensors_of(base / "transformer")
        assert tuned.keys() == stock.keys()
        moved = {k for k in stock if not torch.equal(tuned[k], stock[k])}
        # Full fine-tuning moves every transformer tensor but those whose output no prediction reads
        # (Qwen-Image's last block's text stream: FlowModel.unread_modules)...
        unread = tuple(f"{m}." for m in family_of(family).flow.unread_modules(load_model(str(base)).unet))
        assert moved == {k for k in stock if not k.startswith(unread)} and len(moved) > 0.8 * len(stock)
        for frozen in ("vae", "text_encoder"):  # ...and nothing of the frozen parts
            a, b = safetensors_of(final / "model" / frozen), safetensors_of(base / frozen)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), frozen
    else:
        weights = load_file(final / "lora" / "pytorch_lora_weights.safetensors")
        assert weights and all(k.startswith("transformer.") and ".lora_" in k for k in weights)
        # Every adapter trained (B starts at zero: a zero B is an adapter the loss never reached). Qwen-Image
        # drops the text stream after its last block, so that block's text query, text output
        # projection and text MLP would get no gradient: no adapter is put there at all.
        untrained = {k.split(".lora_B")[0] for k, v in weights.items() if "lora_B" in k and not v.abs().sum()}
        assert not untrained, untrained
        if family == "qwen-image":
            last = f"transformer.transformer_blocks.{load_model(str(base)).unet.config.num_layers - 1}"
            assert not any(k.startswith((f"{last}.attn.add_q_proj", f"{last}.attn.to_add_out", f"{last}.txt_mlp.")) for k in weights)
        assert len(untrained) < 0.1 * len(weights)
        text_adapter = final / "lora" / "text_encoder"
        assert (text_adapter / "adapter_config.json").is_file() == ("text" in recipe)
        if "text" in recipe:
            adapter = safetensors_of(text_adapter)
            assert adapter and all(".lora_" in k and ".layers." in k and "visual" not in k for k in adapter)
            assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
        trained = load_model(str(base))
        load_lora_into(trained, final / "lora")
    after = fixed_batch_loss(trained, cfg)
    assert after < 0.97 * before, f"{recipe}: fixed-batch loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_text_and_latents_equal_live_encoding(flow_models, flow_dataset, family, tmp_path):
    cfg = flow_config(flow_models[family], flow_dataset, run={"cache_dir": str(tmp_path / "cache")})
    parts = load_model(cfg.model.path)
    for m in (parts.vae, parts.text_encoder):
        m.requires_grad_(False).eval()
    dataset = make_dataset(cfg, parts, load_records(cfg.data.dataset))
    conditioner, codec = conditioner_from_parts(parts, cfg.text), LatentCodec.for_parts(parts)
    cached, report = build_caches(cfg, codec, conditioner, dataset, Accelerator(cpu=True), True, progress=False)
    assert report.kinds["latents"]["computed"] == len(dataset) and report.kinds["text"]["computed"] >= 5
    prompts = [r["text"] for r in dataset.records[::4]] + [""]
    with torch.no_grad():
        live = conditioner.encode(prompts)
    from_cache = cached.encode(prompts)
    assert from_cache.hidden.shape == live.hidden.shape and torch.equal(from_cache.mask, live.mask)
    torch.testing.assert_close(from_cache.hidden, live.hidden, rtol=1e-5, atol=1e-6)
    # Latents: the cached posterior draws what encoding the pixels draws (Qwen-Image samples, Z-Image takes the mode).
    items = dataset.load_batch([0, 1], decode_only=True)
    with torch.no_grad():
        encoded = codec.latents(codec.posterior(torch.stack([i["pixels"] for i in items])), torch.Generator().manual_seed(3))
    stored = codec.latents(torch.stack([dataset[i]["posterior"] for i in (0, 1)]), torch.Generator().manual_seed(3))
    assert stored.shape == (2, 16, 4, 4)
    torch.testing.assert_close(stored, encoded, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_with_caches_equals_training_without(flow_models, flow_dataset, family, tmp_path):
    losses = {}
    for cache in (False, True):
        cfg = flow_config(flow_models[family], flow_dataset, data={"caption_dropout": 0.25},
                          run={"cache": cache, "cache_dir": str(tmp_path / "cache")})
        losses[cache] = loop.train(cfg, tmp_path / f"run-{cache}", progress=False).losses
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()) == ["latents", "text"]
    assert len(set(losses[False])) == 3
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_resumed_training_equals_uninterrupted_training(flow_models, flow_dataset, family, tmp_path):
    def cfg(steps):
        return flow_config(flow_models[family], flow_dataset, text=SHORT_TEXT, data={"caption_dropout": 0.25},
                           train={"max_steps": steps, "train_text_encoder": True, "lr_text_encoder": 1e-3},
                           run={"checkpoint_every": 2})

    whole, split = tmp_path / "whole", tmp_path / "split"
    loop.train(cfg(4), whole, progress=False)
    assert loop.train(cfg(2), split, progress=False).step == 2
    second = loop.train(cfg(4), split, resume="latest", progress=False)
    assert second.step == 4 and len(second.losses) == 2  # only steps 3 and 4 ran again
    for name in ("pytorch_lora_weights.safetensors", "text_encoder/adapter_model.safetensors"):
        a, b = load_file(whole / "final" / "lora" / name), load_file(split / "final" / "lora" / name)
        assert a.keys() == b.keys() and a
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], name
    a, b = metrics(whole), metrics(split)
    assert [b[s]["loss"] for s in (1, 2, 3, 4)] == [a[s]["loss"] for s in (1, 2, 3, 4)]
    assert len({a[s]["loss"] for s in a}) == 4


@pytest.mark.parametrize("family", FAMILIES)
def test_per_part_learning_rates_land_in_the_optimizer_groups(flow_models, flow_dataset, family, tmp_path):
    cfg = flow_config(flow_models[family], flow_dataset, text=SHORT_TEXT, run={"checkpoint_every": 1},
                      train={"max_steps": 1, "lr_unet": 3e-4, "train_text_encoder": True, "lr_text_encoder": 7e-5,
                             "lr_schedule": "constant"})
    loop.train(cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-00000001" / "state.pt", weights_only=True)
    groups = {g["name"]: g for g in state["optimizer"]["param_groups"]}
    assert {k: g["lr"] for k, g in groups.items()} == {"unet": 3e-4, "text_encoder": 7e-5}
    trained = load_file(tmp_path / "run" / "checkpoints" / "step-00000001" / "trained.safetensors")
    # Each group holds exactly its part's adapter tensors, stepped as one flat tensor (FlatAdamW).
    for name in groups:
        [index] = groups[name]["params"]
        adapters = [v for k, v in trained.items() if k.startswith(f"{name}.")]
        assert adapters and state["optimizer"]["state"][index]["exp_avg"].numel() == sum(v.numel() for v in adapters)
    logged = metrics(tmp_path / "run")[1]
    assert (logged["lr/unet"], logged["lr/text_encoder"]) == (3e-4, 7e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_checkpointing_gives_the_same_losses(flow_models, flow_dataset, family, tmp_path):
    losses = {}
    for on in (False, True):
        cfg = flow_config(flow_models[family], flow_dataset, text=SHORT_TEXT, run={"gradient_checkpointing": on},
                          train={"max_steps": 2, "train_text_encoder": True, "lr_text_encoder": 1e-3})
        if on:  # the switch reaches both trained modules (the losses alone would not tell)
            parts = prepare_inputs(cfg, torch.device("cpu")).parts
            assert parts.unet.gradient_checkpointing and parts.text_encoder.is_gradient_checkpointing
        losses[on] = loop.train(cfg, tmp_path / f"run-{on}", progress=False).losses
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5)


@pytest.mark.parametrize("text_encoder", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_training_with_the_trace_equals_training_without(flow_models, family, text_encoder, tmp_path, monkeypatch):
    """`run.trace_unet` (training/traced_unet.py) replays the transformer's call: the same losses and
    adapters, with the prompts' gradients reaching a trained text encoder through the trace."""
    from coverforge.training.traced_unet import TracedCall

    made = []
    monkeypatch.setattr(TracedCall, "_trace", lambda self, *a, _orig=TracedCall._trace: made.append(1) or _orig(self, *a))
    # Four covers, batch 4: each step sees all four prompts, in one of four orders of their lengths
    # (one is longer), so in 6 steps some order recurs, and gets traced, even for Z-Image.
    dataset = write_colour_dataset(tmp_path / "data", n_per_colour=1)
    train = {"max_steps": 6, **({"train_text_encoder": True, "lr_text_encoder": 1e-3} if text_encoder else {})}
    runs = {}
    for trace in ("auto", "off"):
        cfg = flow_config(flow_models[family], dataset, text=SHORT_TEXT, data={"caption_dropout": 0.0}, train=train,
                          run={"trace_unet": trace})
        runs[trace] = loop.train(cfg, tmp_path / trace, progress=False).losses
        assert made, "no step replayed a trace"
    assert len(set(runs["off"])) == 6 and runs["auto"] == runs["off"]
    for name in ("pytorch_lora_weights.safetensors", *(["text_encoder/adapter_model.safetensors"] if text_encoder else [])):
        a, b = load_file(tmp_path / "auto" / "final" / "lora" / name), load_file(tmp_path / "off" / "final" / "lora" / name)
        assert a.keys() == b.keys() and a
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], name


@pytest.mark.parametrize("family", FAMILIES)
def test_aspect_buckets_are_on_the_16_px_grid(flow_models, family, tmp_path):
    root = write_colour_dataset(tmp_path / "ds", n_per_colour=4, size=(64, 96))
    meta = root / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    # Four covers each of 2:3, 3:2, 5:4 and 9:16: ratios that fall between the 16-px steps.
    for row, (w, h) in zip(rows, [(64, 96), (96, 64), (100, 80), (72, 128)] * 4):
        Image.open(root / "train" / row["file_name"]).resize((w, h)).save(root / "train" / row["file_name"])
        row["width"], row["height"] = w, h
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = flow_config(flow_models[family], root, data={"buckets": True, "resolution": 64}, train={"max_steps": 1})
    dataset = make_dataset(cfg, load_model(cfg.model.path), load_records(str(root)))
    shapes = set(dataset.buckets)
    assert len(shapes) >= 3 and any(w != h for w, h in shapes)
    assert all(w % 16 == 0 and h % 16 == 0 for w, h in shapes), shapes
    assert loop.train(cfg, tmp_path / "run", progress=False).step == 1  # the transformer takes them


@pytest.mark.parametrize("setting", ['train.prediction_type="epsilon"', "train.min_snr_gamma=5.0", "train.noise_offset=0.05",
                                     "train.timestep_min=100", "train.timestep_max=900"])
def test_ddpm_settings_are_refused_in_one_line(flow_models, flow_dataset, setting, tmp_path, capsys):
    name = setting.split("=")[0]
    for family in FAMILIES:
        config = tmp_path / f"{family}.toml"
        config.write_text(to_toml(flow_config(flow_models[family], flow_dataset)))
        code = main(["train", str(config), setting, "--out", str(tmp_path / family), "--no-progress"])
        errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert code == 2 and len(errors) == 1, errors
        assert f"{name} = " in errors[0] and family in errors[0] and "flow matching" in errors[0]
        assert not (tmp_path / family / "final").exists()
