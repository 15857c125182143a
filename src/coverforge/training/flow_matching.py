"""Flow-matching training math (rectified flow, as Qwen-Image and Z-Image are trained).

x_s = (1 - s) x0 + s noise for s in (0, 1); the network learns the velocity noise - x0. Which s a
batch trains at: drawn uniform or logit-normal (Esser et al. 2024, sec. 3.1: more steps in the
middle of the path), then shifted as the model's scheduler config shifts its sampling sigmas, so
training spends its steps where sampling will: a static shift (Z-Image: 3) or, where the config
asks for dynamic shifting (Qwen-Image), the resolution-dependent shift of the pipeline's
`calculate_shift` for this batch's token count.
"""

from __future__ import annotations

import math

import torch


def draw_sigmas(batch: int, generator: torch.Generator, weighting: str, mean: float, std: float) -> torch.Tensor:
    """Unshifted sigmas in (0, 1)."""
    if weighting == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn((batch,), generator=generator))
    return torch.rand((batch,), generator=generator).clamp(1e-5, 1 - 1e-5)  # uniform


def resolution_mu(scheduler_config: dict, image_tokens: int) -> float:
    """The pipelines' `calculate_shift`: mu linear in the image token count between the config's bounds."""
    c = scheduler_config
    base_len, max_len = c.get("base_image_seq_len", 256), c.get("max_image_seq_len", 4096)
    base, top = c.get("base_shift", 0.5), c.get("max_shift", 1.15)
    slope = (top - base) / (max_len - base_len)
    return image_tokens * slope + (base - slope * base_len)


def shift_sigmas(sigmas: torch.Tensor, scheduler_config: dict, image_tokens: int, override: float = 0.0) -> torch.Tensor:
    """Shift sigmas as the scheduler shifts its sampling sigmas (`override` > 0: that static shift)."""
    c = scheduler_config
    if override:
        shift = override
    elif c.get("use_dynamic_shifting"):
        mu = resolution_mu(c, image_tokens)
        if c.get("time_shift_type", "exponential") == "exponential":
            return math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))
        return mu / (mu + (1 / sigmas - 1))
    else:
        shift = c.get("shift", 1.0)
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def noisy_latents(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    s = sigmas.view(-1, *([1] * (latents.ndim - 1))).to(latents.dtype)
    return (1 - s) * latents + s * noise


def velocity_target(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - latents
