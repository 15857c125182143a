"""The pixel grid a model draws on: VAE factor, the denoiser's own multiple, native size.

Asked of anything with `family`, `unet` (the denoiser) and `vae` (ModelParts, a Generator):
buckets, the end-of-run sample check and generation all read these, so a size that trains is a
size that samples.
"""

from __future__ import annotations

from coverforge.models.families import family_of


def vae_factor(model) -> int:
    """Pixels per latent pixel (1 for pixel-space models)."""
    if model.vae is None:
        return 1
    flow = family_of(model.family).flow
    return flow.vae_factor(model.vae) if flow is not None else 2 ** (len(model.vae.config.block_out_channels) - 1)


def latent_multiple(model, levels_cap: int | None = None) -> int:
    """Latent sides must divide by this: the UNet's downsamplings (at most `levels_cap` of them), or
    the transformer's patch."""
    flow = family_of(model.family).flow
    if flow is not None:
        return flow.patch
    levels = len(model.unet.config.block_out_channels) - 1
    return 2 ** (levels if levels_cap is None else min(levels, levels_cap))


def size_multiple(model) -> int:
    """Pixel sizes must divide by this: the VAE factor times the denoiser's multiple."""
    return vae_factor(model) * latent_multiple(model)


def native_size(model) -> int:
    """The side the model was made for (the pipeline's default when no size is given)."""
    flow = family_of(model.family).flow
    if flow is not None:
        return flow.native_size
    return model.unet.config.sample_size * vae_factor(model)
