"""The demo's shifted noise schedule (`model.scratch_noise_shift`): SNR divided by shift**2."""

import pytest
import torch
from diffusers import DDPMScheduler

from coverforge.config import ModelConfig
from coverforge.training.scratch import build_scratch_parts, shifted_betas


def _snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    a = alphas_cumprod.double()
    return a / (1 - a)


def test_shifted_betas_divide_snr_by_shift_squared():
    base = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    shifted = DDPMScheduler(num_train_timesteps=1000, trained_betas=shifted_betas(base.alphas_cumprod, 2.0).tolist())
    ratio = _snr(shifted.alphas_cumprod[:990]) / _snr(base.alphas_cumprod[:990])
    assert torch.allclose(ratio, torch.full_like(ratio, 0.25), rtol=1e-3)
    assert float(shifted.alphas_cumprod[-1]) < 1e-6  # still ends in (almost) pure noise


def test_shift_one_is_the_plain_schedule():
    base = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    assert torch.allclose(shifted_betas(base.alphas_cumprod, 1.0), base.betas, atol=1e-5)


def test_scratch_model_saves_the_shift_in_its_scheduler_config():
    small = dict(scratch_channels=[8, 16], scratch_sample_size=8, scratch_cross_attention_dim=32)
    plain = build_scratch_parts(ModelConfig(**small), "v_prediction", seed=0).scheduler_config
    shifted = build_scratch_parts(ModelConfig(**small, scratch_noise_shift=2.0), "v_prediction", seed=0).scheduler_config
    assert plain.get("trained_betas") is None and plain["beta_schedule"] == "squaredcos_cap_v2"
    rebuilt = DDPMScheduler.from_config(shifted)
    assert len(shifted["trained_betas"]) == 1000 and rebuilt.config.prediction_type == "v_prediction"
    assert float(_snr(rebuilt.alphas_cumprod)[500] / _snr(DDPMScheduler.from_config(plain).alphas_cumprod)[500]) == pytest.approx(0.25, rel=1e-3)

