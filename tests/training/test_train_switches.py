"""Speed and memory switches (issue 6): each reaches the module it names and leaves the numbers alone."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from coverforge.config import RESUMABLE, RunConfig, TrainConfig, config_from_dict
from coverforge.models.loading import load_model
from coverforge.training.switches import apply_switches, frozen_dtype


def unet_out(parts, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, 8, generator=g)
    hidden = torch.randn(2, 154, 32, generator=g)  # two 77-token chunks
    with torch.no_grad():
        return parts.unet(x, torch.tensor([10, 500]), encoder_hidden_states=hidden).sample


def test_eager_attention_computes_what_sdpa_computes(tiny_models):
    parts = load_model(tiny_models["sd15"])
    apply_switches(parts, RunConfig(attention="sdpa"))
    assert {type(p) for p in parts.unet.attn_processors.values()} == {AttnProcessor2_0}
    fast = unet_out(parts)
    apply_switches(parts, RunConfig(attention="eager"))
    assert {type(p) for p in parts.unet.attn_processors.values()} == {AttnProcessor}
    torch.testing.assert_close(unet_out(parts), fast, rtol=1e-4, atol=1e-5)


def test_vae_slicing_encodes_the_same_latents(tiny_models):
    parts = load_model(tiny_models["sd15"])
    pixels = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        whole = parts.vae.encode(pixels).latent_dist.mean
        apply_switches(parts, RunConfig(vae_slicing=True))
        assert parts.vae.use_slicing and not parts.vae.use_tiling
        sliced = parts.vae.encode(pixels).latent_dist.mean
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)
    # Tiling blends overlapping tiles, so it is an approximation: a switch for big images only.
    apply_switches(parts, RunConfig(vae_tiling=True))
    assert parts.vae.use_tiling
    apply_switches(parts, RunConfig())
    assert not parts.vae.use_slicing and not parts.vae.use_tiling


def test_compile_switch_compiles_the_unet_in_place(tiny_models):
    parts = load_model(tiny_models["sd15"])
    keys = set(parts.unet.state_dict())
    apply_switches(parts, RunConfig(compile_unet=True))
    assert parts.unet._compiled_call_impl is not None  # nn.Module.compile; compiling itself happens on first call
    assert set(parts.unet.state_dict()) == keys  # checkpoints stay interchangeable with uncompiled runs


def test_frozen_parts_stay_fp32_on_cpu_and_follow_mixed_precision_on_gpu():
    assert frozen_dtype(TrainConfig(mixed_precision="bf16"), torch.device("cpu")) == torch.float32
    assert frozen_dtype(TrainConfig(mixed_precision="fp16"), torch.device("cuda")) == torch.float16
    assert frozen_dtype(TrainConfig(mixed_precision="bf16"), torch.device("cuda")) == torch.bfloat16


def test_switches_may_change_on_resume():
    assert {"run.cache", "run.attention", "run.vae_slicing", "run.vae_tiling", "run.compile_unet",
            "run.gradient_checkpointing"} <= RESUMABLE


def test_what_may_change_on_resume_is_the_run_section_and_max_steps():
    """Derived from the sections, not a hand-kept list: every [run] field, train.max_steps, nothing else."""
    from dataclasses import fields

    assert RESUMABLE == {f"run.{f.name}" for f in fields(RunConfig)} | {"train.max_steps"}
    assert not {f"train.{f.name}" for f in fields(TrainConfig)} & {f"train.{f.name}" for f in fields(RunConfig)}


def test_configs_written_before_the_run_section_still_load_with_a_warning(caplog):
    """Run folders and configs from before: train.log_every, data.cache ... read into [run]."""
    cfg = config_from_dict({"model": {"path": "m"}, "train": {"log_every": 7, "max_minutes": 2.5, "attention": "eager"},
                            "data": {"cache": False, "num_workers": 2}}, ["train.checkpoint_every=9"])
    r = cfg.run
    assert (r.log_every, r.max_minutes, r.attention, r.cache, r.num_workers, r.checkpoint_every) == (7, 2.5, "eager", False, 2, 9)
    assert "train.log_every is now run.log_every" in caplog.text
    new = config_from_dict({"model": {"path": "m"}, "train": {"log_every": 7}, "run": {"log_every": 3}})
    assert new.run.log_every == 3  # the new name wins


def test_a_misspelt_config_attribute_is_an_error_not_a_silent_new_field():
    """Configs are slotted: `cfg.data.cache = False` (a field that moved) fails loudly instead of doing nothing."""
    cfg = config_from_dict({"model": {"path": "m"}})
    with pytest.raises(AttributeError):
        cfg.data.cache = False
