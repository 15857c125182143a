"""Pixels to training latents, per family: the VAE's posterior, and one normalised draw from it.

The latent cache stores the posterior (`posterior`), training draws from it (`latents`); encoding
on the fly makes the same two calls, so a cached run and an uncached one see the same latents.
SD scales by the VAE's scaling_factor; the flow families normalise their own way (Qwen-Image per
channel, Z-Image with a shift), and take a sample or the mode as their own trainers do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from coverforge.models.families import family_of
from coverforge.models.flow_model import FlowModel


@dataclass
class LatentCodec:
    vae: torch.nn.Module
    flow: FlowModel | None = None

    @classmethod
    def for_parts(cls, parts) -> "LatentCodec | None":
        """None for pixel-space models (no VAE)."""
        return None if parts.vae is None else cls(parts.vae, family_of(parts.family).flow)

    def posterior(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1], in the VAE's device and dtype -> (B, 2C, h, w) posterior parameters."""
        if self.flow is not None:
            return self.flow.posterior(self.vae, pixels)
        return self.vae.encode(pixels).latent_dist.parameters

    def latents(self, posterior: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One training latent per posterior, normalised as the denoiser expects it."""
        dist = DiagonalGaussianDistribution(posterior)
        if self.flow is None:
            return dist.sample(generator=generator) * self.vae.config.scaling_factor
        z = dist.mode() if self.flow.latent_draw == "mode" else dist.sample(generator=generator)
        return self.flow.normalise(self.vae, z)
