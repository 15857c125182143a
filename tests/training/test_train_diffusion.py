"""Diffusion training math (training/diffusion.py) against diffusers and the published formulas."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from coverforge.training.diffusion import (
    SNR_WEIGHTINGS, diffusion_loss, edge_error, min_snr_weights, sample_noise, sample_timesteps, snr, target_for, truncated_snr_weights,
)


@pytest.fixture
def scheduler():
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(4, 4, 8, 8, generator=g)
    noise = torch.randn(4, 4, 8, 8, generator=g)
    timesteps = torch.tensor([0, 10, 500, 999])
    return latents, noise, timesteps


def test_epsilon_target_is_the_noise(scheduler, batch):
    latents, noise, t = batch
    assert torch.equal(target_for(scheduler, latents, noise, t, "epsilon"), noise)


def test_v_target_equals_scheduler_velocity_and_the_formula(scheduler, batch):
    latents, noise, t = batch
    v = target_for(scheduler, latents, noise, t, "v_prediction")
    assert torch.equal(v, scheduler.get_velocity(latents, noise, t))
    # Salimans & Ho 2022: v = sqrt(abar) * eps - sqrt(1 - abar) * x0
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    expected = abar.sqrt() * noise - (1 - abar).sqrt() * latents
    torch.testing.assert_close(v, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(v, noise)


def test_sample_target_is_the_clean_latents(scheduler, batch):
    latents, noise, t = batch
    assert torch.equal(target_for(scheduler, latents, noise, t, "sample"), latents)


def test_unknown_prediction_type_is_refused(scheduler, batch):
    with pytest.raises(ValueError, match="flow"):
        target_for(scheduler, *batch, "flow")


def test_snr_formula(scheduler):
    t = torch.tensor([0, 250, 999])
    abar = scheduler.alphas_cumprod[t]
    torch.testing.assert_close(snr(scheduler, t), abar / (1 - abar))
    # SNR falls monotonically with the timestep.
    s = snr(scheduler, torch.arange(1000))
    assert bool((s[1:] < s[:-1]).all())


@pytest.mark.parametrize("gamma", [1.0, 5.0])
def test_min_snr_weights_match_hang_et_al(scheduler, gamma):
    t = torch.arange(0, 1000, 37)
    abar = scheduler.alphas_cumprod[t].double()
    s = abar / (1 - abar)
    clipped = torch.clamp(s, max=gamma)
    eps = min_snr_weights(scheduler, t, gamma, "epsilon")
    v = min_snr_weights(scheduler, t, gamma, "v_prediction")
    x0 = min_snr_weights(scheduler, t, gamma, "sample")
    torch.testing.assert_close(eps.double(), clipped / s, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(v.double(), clipped / (s + 1), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(x0.double(), clipped, rtol=1e-5, atol=1e-7)
    # Low-noise steps (SNR > gamma) are down-weighted; high-noise ones keep weight 1 for epsilon.
    assert eps[0] < 1.0 and eps[-1] == pytest.approx(1.0)
    assert bool((eps <= 1.0 + 1e-6).all())


def test_noise_offset_shifts_per_channel_means():
    latents = torch.zeros(16, 4, 32, 32)
    plain = sample_noise(latents, torch.Generator().manual_seed(0), 0.0)
    offset = sample_noise(latents, torch.Generator().manual_seed(0), 1.0)
    # Same base draw, then a constant per (sample, channel): the difference is flat within a channel.
    diff = offset - plain
    assert torch.allclose(diff, diff.mean(dim=(2, 3), keepdim=True), atol=1e-5)
    # Per-channel means of plain noise are ~N(0, 1/1024); with offset 1 they spread ~N(0, 1).
    assert plain.mean(dim=(2, 3)).std() < 0.1
    assert offset.mean(dim=(2, 3)).std() > 0.5
    assert plain.shape == offset.shape == latents.shape


def test_noise_is_reproducible_from_the_generator():
    latents = torch.zeros(2, 4, 8, 8)
    a = sample_noise(latents, torch.Generator().manual_seed(3), 0.1)
    b = sample_noise(latents, torch.Generator().manual_seed(3), 0.1)
    c = sample_noise(latents, torch.Generator().manual_seed(4), 0.1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_timesteps_stay_in_range():
    t = sample_timesteps(5000, torch.Generator().manual_seed(0), 100, 200, "cpu")
    assert t.dtype == torch.long and int(t.min()) >= 100 and int(t.max()) <= 199
    assert len(set(t.tolist())) == 100  # the whole range is used


def test_diffusion_loss_mean_and_weights():
    pred = torch.zeros(2, 1, 2, 2)
    target = torch.stack([torch.ones(1, 2, 2), 2 * torch.ones(1, 2, 2)])
    assert diffusion_loss(pred, target).item() == pytest.approx((1 + 4) / 2)
    weights = torch.tensor([1.0, 0.5])
    assert diffusion_loss(pred, target, weights).item() == pytest.approx((1 * 1 + 4 * 0.5) / 2)



def test_l1_and_huber_losses():
    pred = torch.zeros(2, 1, 2, 2)
    target = torch.stack([torch.ones(1, 2, 2), -2 * torch.ones(1, 2, 2)])
    assert diffusion_loss(pred, target, kind="l1").item() == pytest.approx((1 + 2) / 2)
    weights = torch.tensor([1.0, 0.5])
    assert diffusion_loss(pred, target, weights, kind="l1").item() == pytest.approx((1 + 2 * 0.5) / 2)
    # Pseudo-Huber: about err^2 / (2 delta) below delta, about |err| - delta far above it.
    small = torch.full((1, 1, 2, 2), 1e-3)
    assert diffusion_loss(small, torch.zeros_like(small), kind="huber", huber_delta=0.1).item() == pytest.approx(1e-6 / 0.2, rel=1e-3)
    big = torch.full((1, 1, 2, 2), 100.0)
    assert diffusion_loss(big, torch.zeros_like(big), kind="huber", huber_delta=0.1).item() == pytest.approx(100 - 0.1, abs=1e-3)


def test_edge_term_weights_a_pixel_wide_error_by_one_plus_eight_times_its_weight():
    """train.edge_loss_weight: a flat error costs what plain l2 charges; a checkerboard error, the
    finest structure a cover has, costs about 1 + 8w times it (every neighbour difference is 2x the error)."""
    flat = torch.full((1, 1, 16, 16), 0.1)
    checker = 0.1 * (1 - 2 * ((torch.arange(16).view(-1, 1) + torch.arange(16).view(1, -1)) % 2)).float().view(1, 1, 16, 16)
    zeros = torch.zeros_like(flat)
    assert diffusion_loss(flat, zeros, edge_weight=0.5).item() == pytest.approx(0.01)
    plain = diffusion_loss(checker, zeros).item()
    assert plain == pytest.approx(0.01)
    # 15 of 16 columns (rows) have a right (lower) neighbour: 4 x 0.01 on each of the two axes.
    assert edge_error(checker).item() == pytest.approx(2 * 4 * 0.01)
    assert diffusion_loss(checker, zeros, edge_weight=0.5).item() == pytest.approx(0.01 * (1 + 8 * 0.5))
    weights = torch.tensor([2.0])
    assert diffusion_loss(checker, zeros, weights, edge_weight=0.5).item() == pytest.approx(2 * 0.01 * (1 + 8 * 0.5))


def test_edge_term_leaves_the_fit_of_a_pixel_the_mean():
    """The term is a quadratic form of the error, so what it fits is still the mean of the targets
    (unlike l1): it changes which errors a model short of capacity makes, not the optimum."""
    target = torch.stack([torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    value = torch.full((1, 1, 4, 4), 0.5, requires_grad=True)
    opt = torch.optim.Adam([value], lr=0.01)
    for _ in range(400):
        opt.zero_grad()
        diffusion_loss(value.expand(3, 1, 4, 4), target, edge_weight=1.0).backward()
        opt.step()
    assert value.detach() == pytest.approx(torch.full((1, 1, 4, 4), 1 / 3), abs=0.02)


def test_l1_fits_the_median_where_l2_fits_the_mean():
    """Why train.loss = l1 draws sharper edges: a pixel that is dark on two covers out of three
    and bright on the third is fitted dark by l1 (the median), grey by l2 (the mean)."""
    target = torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1, 1)
    fits = {}
    for kind in ("l2", "l1"):
        value = torch.full((1, 1, 1, 1), 0.5, requires_grad=True)
        opt = torch.optim.Adam([value], lr=0.01)
        for _ in range(400):
            opt.zero_grad()
            diffusion_loss(value.expand(3, 1, 1, 1), target, kind=kind).backward()
            opt.step()
        fits[kind] = value.item()
    assert fits["l2"] == pytest.approx(1 / 3, abs=0.02)
    assert fits["l1"] == pytest.approx(0.0, abs=0.02)

def test_noised_sample_and_target_are_consistent(scheduler, batch):
    """A perfect v-prediction recovers x0 exactly: ties add_noise, get_velocity and our target together."""
    latents, noise, t = batch
    noisy = scheduler.add_noise(latents, noise, t)
    v = target_for(scheduler, latents, noise, t, "v_prediction")
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    x0 = abar.sqrt() * noisy - (1 - abar).sqrt() * v
    torch.testing.assert_close(x0, latents, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("weighting", ["min", "truncated"])
def test_snr_weighted_loss_is_the_same_whatever_the_network_predicts(scheduler, batch, weighting):
    """One clean-sample estimate, written as the epsilon, v or sample its network would output,
    has the same weighted loss: the weights differ per prediction type exactly by the factor
    between that type's error and the clean sample's (SNR, SNR + 1, 1)."""
    latents, noise, _ = batch
    t = torch.tensor([5, 200, 600, 990])
    a = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = scheduler.add_noise(latents, noise, t)
    x0_hat = latents + 0.3 * torch.randn(latents.shape, generator=torch.Generator().manual_seed(2))
    eps_hat = (noisy - a.sqrt() * x0_hat) / (1 - a).sqrt()
    v_hat = a.sqrt() * eps_hat - (1 - a).sqrt() * x0_hat
    predictions = {"sample": x0_hat, "epsilon": eps_hat, "v_prediction": v_hat}
    losses = {kind: diffusion_loss(pred, target_for(scheduler, latents, noise, t, kind),
                                   SNR_WEIGHTINGS[weighting](scheduler, t, 5.0, kind))
              for kind, pred in predictions.items()}
    assert losses["epsilon"].item() == pytest.approx(losses["sample"].item(), rel=1e-3)
    assert losses["v_prediction"].item() == pytest.approx(losses["sample"].item(), rel=1e-3)


def test_truncated_snr_keeps_the_high_noise_steps(scheduler):
    t = torch.arange(0, 1000, 37)
    s = snr(scheduler, t)
    clean = truncated_snr_weights(scheduler, t, 5.0, "sample")
    # Salimans & Ho: max(SNR, 1), here capped at gamma; min-SNR's clean-sample weight goes to 0 instead.
    torch.testing.assert_close(clean, s.clamp(min=1.0, max=5.0))
    assert clean[-1] == 1.0 and min_snr_weights(scheduler, t, 5.0, "sample")[-1] < 0.01
    assert clean[0] == 5.0


def test_truncated_snr_is_finite_at_zero_terminal_snr():
    """The last step of a zero-terminal-SNR schedule (SNR 0) takes the epsilon weight of the step
    before it rather than 1 / 0; every other step keeps its exact weight."""
    zero = DDPMScheduler(rescale_betas_zero_snr=True)
    t = torch.tensor([0, 500, 998, 999])
    assert snr(zero, t)[-1] == 0
    for prediction in ("epsilon", "v_prediction", "sample"):
        assert torch.isfinite(truncated_snr_weights(zero, t, 5.0, prediction)).all(), prediction
    w = truncated_snr_weights(zero, t, 5.0, "epsilon")
    assert w[-1] == w[-2] and w[-2] == pytest.approx(1.0 / snr(zero, t)[-2].item(), rel=1e-5)
