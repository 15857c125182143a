"""Diffusion training math as small pure functions: noising, targets, loss weights."""

from __future__ import annotations

import torch


def sample_noise(latents: torch.Tensor, generator: torch.Generator, offset: float = 0.0) -> torch.Tensor:
    """Gaussian noise; `offset` adds per-channel constant noise (Guttenberg 2023, "noise offset")."""
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(latents.device)
    if offset:
        shift = torch.randn((latents.shape[0], latents.shape[1], 1, 1), generator=generator, dtype=latents.dtype)
        noise = noise + offset * shift.to(latents.device)
    return noise


def sample_timesteps(batch: int, generator: torch.Generator, low: int, high: int, device) -> torch.Tensor:
    return torch.randint(low, high, (batch,), generator=generator).long().to(device)


def target_for(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """What the network is trained to predict: epsilon, v (Salimans & Ho 2022) or the clean sample."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if prediction_type == "sample":
        return latents
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def snr(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) at each timestep."""
    alphas_cumprod = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    return alphas_cumprod / (1.0 - alphas_cumprod)


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float, prediction_type: str) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023, eq. 4), per prediction type."""
    s = snr(scheduler, timesteps)
    clipped = torch.minimum(s, torch.full_like(s, gamma))
    if prediction_type == "epsilon":
        # min(snr, gamma) / snr, written so that snr = 0 (the last step of a zero-terminal-SNR
        # schedule) gives its limit 1 instead of 0 / 0.
        return (gamma / s).clamp(max=1.0)
    if prediction_type == "v_prediction":
        return clipped / (s + 1.0)
    return clipped  # sample prediction


def truncated_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float, prediction_type: str) -> torch.Tensor:
    """Truncated-SNR loss weights (Salimans & Ho 2022, sec. 4): in clean-sample terms max(SNR, 1),
    here capped at gamma, expressed for the network's own target.

    Min-SNR's clean-sample weight min(SNR, gamma) goes to 0 at high noise; this one stays at 1
    there, and still weights the low-noise steps, where a cover's detail is drawn, up to gamma.
    The loss of a prediction is the same whichever of epsilon, v or the sample the network
    predicts (epsilon error = SNR x sample error, v error = (SNR + 1) x sample error)."""
    s = snr(scheduler, timesteps)
    clean = s.clamp(min=1.0, max=max(gamma, 1.0))
    if prediction_type == "epsilon":
        # 1 / SNR has no limit at SNR = 0 (the last step of a zero-terminal-SNR schedule, where x_t
        # is pure noise and the noise error says nothing about the sample): that step takes the
        # weight of the schedule's noisiest step that still holds signal, instead of infinity.
        every = snr(scheduler, torch.arange(len(scheduler.alphas_cumprod)))
        return clean / s.clamp(min=every[every > 0].min().item())
    if prediction_type == "v_prediction":
        return clean / (s + 1.0)
    return clean  # sample prediction


SNR_WEIGHTINGS = {"min": min_snr_weights, "truncated": truncated_snr_weights}
"""train.snr_weighting -> its loss weights (used when train.min_snr_gamma > 0)."""


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, kind: str = "l2",
                   huber_delta: float = 0.1, edge_weight: float = 0.0) -> torch.Tensor:
    """Mean over the batch of each sample's per-pixel loss (train.loss), plus `edge_weight` times the
    squared error of neighbouring pixels' differences (train.edge_loss_weight), times its weight if given."""
    err = pred.float() - target.float()
    if kind == "l1":
        per_pixel = err.abs()
    elif kind == "huber":
        # Pseudo-Huber: err^2 / 2 delta near 0 and |err| far from it, scaled so both halves meet the l1 slope.
        per_pixel = torch.sqrt(err * err + huber_delta**2) - huber_delta
    else:
        per_pixel = err * err
    per_sample = per_pixel.mean(dim=(1, 2, 3))
    if edge_weight:
        per_sample = per_sample + edge_weight * edge_error(err)
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean()


def edge_error(err: torch.Tensor) -> torch.Tensor:
    """Per sample, the mean squared error of horizontal plus vertical neighbour differences.

    With l2 this makes the loss a quadratic form that weights the spatial frequency (fx, fy), in radians
    per pixel, by 1 + w (4 sin^2(fx / 2) + 4 sin^2(fy / 2)): up to 1 + 8w at a pixel-wide pattern, 1 for
    flat error. Its minimiser is still the
    mean of what the noisy input allows; what changes is where a model short of capacity spends its
    errors: less on edges and lines a pixel or two wide, which plain l2 lets it draw as blobs. The
    relation between epsilon, v and sample errors is linear, so the same term serves every target."""
    dx = err[..., :, 1:] - err[..., :, :-1]
    dy = err[..., 1:, :] - err[..., :-1, :]
    return (dx * dx).mean(dim=(1, 2, 3)) + (dy * dy).mean(dim=(1, 2, 3))
