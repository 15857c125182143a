"""A sampler that cannot step a sample-predicting model is refused in one line, before any work.

diffusers' Euler-ancestral and PNDM steps raise NotImplementedError on prediction_type "sample"
(the demo's model): before this check, `generate --sampler euler_a` on such a run ended in that
traceback after loading, and a training config with that sampler died at its first validation.
"""

import pytest
import torch

from coverforge.config import NO_SAMPLE_PREDICTION, SAMPLERS, ConfigError, load_config
from coverforge.errors import CoverforgeError
from coverforge.sampling.samplers import make_sampler

SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "prediction_type": "sample"}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_either_steps_a_sample_model_or_is_refused(name):
    if name in NO_SAMPLE_PREDICTION:
        with pytest.raises(CoverforgeError, match=rf"sample.sampler = '{name}'.*choose one of"):
            make_sampler(name, SCHEDULE)
        return
    scheduler = make_sampler(name, SCHEDULE)
    scheduler.set_timesteps(4)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
    clean = torch.zeros_like(x)
    for t in scheduler.timesteps:
        x = scheduler.step(clean, t, scheduler.scale_model_input(x, t)).prev_sample
    assert torch.isfinite(x).all()


def test_the_refused_samplers_really_fail_in_diffusers():
    # If diffusers learns to step these, the refusal list should shrink: this test says when.
    import diffusers

    for name in NO_SAMPLE_PREDICTION:
        scheduler = getattr(diffusers, SAMPLERS[name]).from_config(SCHEDULE)
        scheduler.set_timesteps(4)
        x = torch.randn(1, 3, 8, 8) * scheduler.init_noise_sigma
        t = scheduler.timesteps[0]
        with pytest.raises((NotImplementedError, ValueError)):
            for t in scheduler.timesteps:
                x = scheduler.step(torch.zeros_like(x), t, scheduler.scale_model_input(x, t)).prev_sample


def test_a_training_config_with_such_a_sampler_is_refused_at_load(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[model]\n[train]\nrecipe = "scratch"\nprediction_type = "sample"\n[sample]\nsampler = "euler_a"\n')
    with pytest.raises(ConfigError, match="sample.sampler = 'euler_a'"):
        load_config(config)
    assert load_config(config, ["sample.sampler=ddim"]).sample.sampler == "ddim"
