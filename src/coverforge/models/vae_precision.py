"""The VAE's precision, decided once for caching, training and generation.

SDXL's VAE overflows in fp16 (NaN latents and black images); its config says so with
`force_upcast`, and the stock pipelines then run it in fp32. coverforge follows that flag
everywhere the VAE runs, so a cached latent, a training latent and a decoded image agree.
"""

from __future__ import annotations

import torch


def vae_dtype(vae, wanted: torch.dtype) -> torch.dtype:
    """The dtype the VAE runs in when the rest of the frozen model runs in `wanted`."""
    if wanted == torch.float16 and getattr(vae.config, "force_upcast", False):
        return torch.float32
    return wanted


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Scaled latents -> images in [-1, 1], upcasting a half-precision VAE that asks for it (and
    putting it back afterwards, as the stock pipelines do)."""
    before = vae.dtype
    dtype = vae_dtype(vae, before)
    if dtype != before:
        vae.to(dtype)
    try:
        return vae.decode(latents.to(dtype) / vae.config.scaling_factor, return_dict=False)[0]
    finally:
        if dtype != before:
            vae.to(before)
