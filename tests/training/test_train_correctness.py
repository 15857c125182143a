"""Issue 17's single-process faults, each pinned by a test: min-SNR at zero terminal SNR, Prodigy's
learning rates, PiSSA/OLoRA, the VAE's force_upcast, the prediction-type override, validation with
the EMA weights, the grad scaler in checkpoints, and random flips per epoch with both views cached."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coverforge.config import TrainConfig, config_from_dict
from coverforge.errors import ConfigError
from coverforge.models.vae_precision import decode_latents, vae_dtype
from coverforge.training import loop, setup
from coverforge.training.diffusion import min_snr_weights
from coverforge.training.recipe import TrainedPart, make_optimizer
from scratch_kit import scratch_config


def test_min_snr_with_epsilon_is_finite_at_zero_terminal_snr():
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(rescale_betas_zero_snr=True)
    t = torch.tensor([0, 500, 999])
    for prediction in ("epsilon", "v_prediction", "sample"):
        w = min_snr_weights(scheduler, t, 5.0, prediction)
        assert torch.isfinite(w).all(), prediction
    assert min_snr_weights(scheduler, t, 5.0, "epsilon")[-1] == 1.0  # the limit of min(snr, 5) / snr


def test_prodigy_gets_multipliers_around_one(monkeypatch):
    seen = {}

    class Prodigy:
        def __init__(self, groups, **kw):
            seen["lrs"] = [g["lr"] for g in groups]

    monkeypatch.setitem(sys.modules, "prodigyopt", types.SimpleNamespace(Prodigy=Prodigy))
    t = TrainConfig(optimizer="prodigy")
    layer = torch.nn.Linear(2, 2)
    parts = [TrainedPart("unet", layer, 1e-4), TrainedPart("text_encoder", torch.nn.Linear(2, 2), 5e-5)]
    make_optimizer(t, parts)
    assert seen["lrs"] == [1.0, 0.5]


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_lora_inits_that_rewrite_the_base_are_refused(init):
    with pytest.raises(ConfigError, match="lora.init"):
        config_from_dict({"lora": {"init": init}})


def test_vae_follows_force_upcast(tiny_models):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tiny_models["sdxl"] / "vae")
    vae.register_to_config(force_upcast=True)
    assert vae_dtype(vae, torch.float16) == torch.float32
    assert vae_dtype(vae, torch.bfloat16) == torch.bfloat16
    vae.register_to_config(force_upcast=False)
    assert vae_dtype(vae, torch.float16) == torch.float16
    vae.register_to_config(force_upcast=True)
    vae.to(torch.float16)
    seen = []
    real = vae.decode
    vae.decode = lambda z, **kw: (seen.append((z.dtype, next(vae.parameters()).dtype)), real(z, **kw))[1]
    images = decode_latents(vae, torch.randn(1, 4, 4, 4, dtype=torch.float16))
    assert seen == [(torch.float32, torch.float32)] and images.dtype == torch.float32
    assert vae.dtype == torch.float16  # put back afterwards


def test_place_models_keeps_an_upcast_vae_in_fp32_on_gpu(tiny_models, monkeypatch):
    from coverforge.models.loading import load_model
    from coverforge.training import switches

    parts = load_model(str(tiny_models["sdxl"]))
    parts.vae.register_to_config(force_upcast=True)
    for m in (parts.unet, parts.vae, *parts.text_encoders):
        m.requires_grad_(False)
    t = TrainConfig(mixed_precision="fp16")
    monkeypatch.setattr(switches, "frozen_dtype", lambda t, device: torch.float16)  # as on a GPU
    switches.place_models(parts, t, torch.device("cpu"))
    assert parts.vae.dtype == torch.float32 and parts.unet.dtype == torch.float16


def test_place_models_keeps_a_lora_base_in_the_low_dtype_and_its_adapters_in_fp32(tiny_models, monkeypatch):
    from coverforge.config import LoraConfig
    from coverforge.models.loading import load_model
    from coverforge.models.lora import add_unet_lora
    from coverforge.training import switches

    parts = load_model(str(tiny_models["sd15"]))
    for m in (parts.unet, parts.vae, *parts.text_encoders):
        m.requires_grad_(False)
    add_unet_lora(parts.unet, LoraConfig(rank=4, alpha=4))
    parts.text_encoder.requires_grad_(True)  # a full fine-tune of the text encoder stays fp32 whole
    monkeypatch.setattr(switches, "frozen_dtype", lambda t, device: torch.bfloat16)  # as on a GPU
    switches.place_models(parts, TrainConfig(mixed_precision="bf16"), torch.device("cpu"))
    lora = {n: p.dtype for n, p in parts.unet.named_parameters() if "lora_" in n}
    base = {n: p.dtype for n, p in parts.unet.named_parameters() if "lora_" not in n}
    assert lora and set(lora.values()) == {torch.float32}
    assert set(base.values()) == {torch.bfloat16}
    assert {p.dtype for p in parts.text_encoder.parameters()} == {torch.float32}
    assert parts.vae.dtype == torch.bfloat16


def _lora_cfg(tiny_models, dataset, tmp_path, **extra):
    values = {
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": False, "cache_dir": str(tmp_path / "cache")},
        "train": {"recipe": "lora", "max_steps": 2, "batch_size": 2, "checkpoint_every": 100, "log_every": 1},
        "lora": {"rank": 4, "alpha": 4},
    }
    for section, fields in extra.items():
        values.setdefault(section, {}).update(fields)
    return config_from_dict(values)


def test_prediction_type_override_reaches_validation_and_the_saved_model(tiny_models, colour_dataset, tmp_path, monkeypatch):
    from coverforge.sampling.from_run import load_model_generator, load_run_generator

    seen = []
    monkeypatch.setattr(loop, "sample_validation", lambda gen, cfg, out, step: seen.append(gen.scheduler_config["prediction_type"]))
    cfg = _lora_cfg(tiny_models, colour_dataset, tmp_path, train={"prediction_type": "v_prediction"}, sample={"prompts": ["a red book"], "steps": 2})
    loop.train(cfg, tmp_path / "run", progress=False)
    assert seen == ["v_prediction"]
    gen, _ = load_run_generator(tmp_path / "run")
    assert gen.scheduler_config["prediction_type"] == "v_prediction"
    lora = load_model_generator(str(tiny_models["sd15"]), str(tmp_path / "run" / "final" / "lora"))
    assert lora.scheduler_config["prediction_type"] == "v_prediction"

    full = _lora_cfg(tiny_models, colour_dataset, tmp_path, train={"recipe": "full", "max_steps": 1, "prediction_type": "v_prediction"})
    loop.train(full, tmp_path / "full", progress=False)
    saved = (tmp_path / "full" / "final" / "model" / "scheduler" / "scheduler_config.json").read_text()
    assert '"prediction_type": "v_prediction"' in saved


def _scratch(tmp_path, dataset, **train):
    """Four steps with EMA, validation samples every two."""
    defaults = {"max_steps": 4, "lr_unet": 1e-2, "ema_decay": 0.5, "checkpoint_every": 100, "log_every": 1}
    return scratch_config(tmp_path, dataset, sample={"every": 2}, **(defaults | train))


def test_validation_draws_with_the_ema_weights_and_leaves_training_alone(tmp_path, colour_dataset, monkeypatch):
    drawn = []
    monkeypatch.setattr(loop, "sample_validation",
                        lambda gen, cfg, out, step: drawn.append({k: v.clone() for k, v in gen.unet.state_dict().items()}))
    loop.train(_scratch(tmp_path, colour_dataset), tmp_path / "run", progress=False)
    final = load_file(tmp_path / "run" / "final" / "model" / "unet" / "diffusion_pytorch_model.safetensors")
    assert len(drawn) == 3  # steps 2 and 4, and the end
    assert all(torch.equal(drawn[-1][k], final[k]) for k in final)  # the end: what final/ holds (EMA)
    # Sampling mid-run swaps the EMA weights in and back out: the run trains as without it.
    monkeypatch.setattr(loop, "sample_validation", lambda *a: None)
    loop.train(_scratch(tmp_path, colour_dataset, ema_decay=0.5), tmp_path / "quiet", progress=False)
    quiet = load_file(tmp_path / "quiet" / "final" / "model" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(quiet[k], final[k]) for k in final)
    assert not all(torch.equal(drawn[0][k], drawn[-1][k]) for k in final)


def test_the_grad_scaler_state_is_checkpointed(tmp_path, colour_dataset):
    s = setup.setup_run(_scratch(tmp_path, colour_dataset, ema_decay=0.0), tmp_path / "run", None)
    s.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # what fp16 on a GPU has
    s.step = 1
    setup.save_state(s, s.accelerator)
    s.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)
    setup.restore_state(s, tmp_path / "run" / "checkpoints" / "step-00000001")
    assert s.accelerator.scaler.get_scale() == 1024.0


def test_random_flip_is_a_fresh_coin_each_epoch_and_both_views_are_cached(tiny_models, colour_dataset, tmp_path):
    cfg = _lora_cfg(tiny_models, colour_dataset, tmp_path, data={"random_flip": True})
    s = setup.setup_run(cfg, tmp_path / "run", None)
    ds = s.dataset
    coins = [[ds.flipped(i, epoch) for i in range(len(ds))] for epoch in range(4)]
    assert any(coins[0][i] != coins[1][i] for i in range(len(ds)))  # not fixed per cover
    assert ds.latents is not None and len(ds.latents.keys) == 2 * len(ds) and not ds.latents.missing()
    plain, mirrored = ds.item(0, False)["posterior"], ds.item(0, True)["posterior"]
    assert not torch.equal(mirrored, plain)  # two cached views, each encoded from its own pixels
    pixels = ds.decode(0, True)["pixels"]
    assert torch.equal(pixels, ds.decode(0, False)["pixels"].flip(-1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the GPU path (fp16, EMA resume on the device)")
def test_fp16_lora_and_ema_resume_on_the_gpu(tiny_models, colour_dataset, tmp_path):
    cfg = _lora_cfg(tiny_models, colour_dataset, tmp_path, train={"mixed_precision": "fp16", "ema_decay": 0.9, "max_steps": 2,
                                                                 "checkpoint_every": 1})
    result = loop.train(cfg, tmp_path / "run", progress=False)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    more = _lora_cfg(tiny_models, colour_dataset, tmp_path, train={"mixed_precision": "fp16", "ema_decay": 0.9, "max_steps": 3,
                                                                  "checkpoint_every": 1})
    loop.train(more, tmp_path / "run", resume="latest", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-00000003" / "state.pt", weights_only=True)
    assert state["grad_scaler"] is not None
