"""The one generation function: used by `coverforge generate`, validation during training,
evaluation and the demo.

It follows the stock diffusers pipelines step for step (same noise draws per seed, same
scheduler calls, same classifier-free-guidance batch order, same post-processing), so a short
prompt gives the stock pipeline's pixels; what it adds is the long-prompt conditioning and
pixel-space models trained from scratch (no VAE). The flow families (Qwen-Image, Z-Image) run
their stock pipeline itself on coverforge's conditioning (sampling/flow.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from coverforge.config import SampleConfig
from coverforge.errors import CoverforgeError
from coverforge.models.families import family_of
from coverforge.models.grid import native_size, size_multiple, vae_factor
from coverforge.models.vae_precision import decode_latents
from coverforge.sampling.flow import generate_flow
from coverforge.sampling.samplers import make_sampler
from coverforge.text.conditioners import conditioner_from_parts
from coverforge.text.conditioning import sdxl_time_ids


def check_size(width: int, height: int, model) -> None:
    m = size_multiple(model)
    if width % m or height % m:
        raise CoverforgeError(f"width and height must be multiples of {m} for this model (got {width}x{height})")


@dataclass
class Generator:
    """What generation needs from a model, whatever its family or recipe."""

    unet: torch.nn.Module
    """The denoiser (the flow families' transformer too)."""
    conditioner: object
    """`TextConditioner` or `LLMConditioner` (text/conditioners.py)."""
    scheduler_config: dict
    vae: torch.nn.Module | None = None
    """None: the UNet works in pixel space (small models trained from scratch)."""
    zero_empty_negative: bool = False
    """SDXL's force_zeros_for_empty_prompt."""
    family: str = "sd15"

    @property
    def vae_scale_factor(self) -> int:
        return vae_factor(self)

    @property
    def size_multiple(self) -> int:
        return size_multiple(self)

    @property
    def native_size(self) -> int:
        return native_size(self)

    @classmethod
    def from_parts(cls, parts, text_config=None, zero_empty_negative: bool | None = None) -> "Generator":
        if zero_empty_negative is None:
            zero_empty_negative = family_of(parts.family).zero_empty_negative
        return cls(parts.unet, conditioner_from_parts(parts, text_config), parts.scheduler_config, parts.vae, zero_empty_negative, parts.family)


@torch.no_grad()
def generate(
    gen: Generator,
    prompts: list[str],
    seeds: list[int],
    sample: SampleConfig | None = None,
    negative_prompts: list[str] | None = None,
    progress: bool = False,
) -> list[Image.Image]:
    """One image per (prompt, seed) pair; a seed reproduces its image whatever the batch.

    `sample` gives sampler, steps, guidance, size and the negative prompt (its defaults when
    None); `negative_prompts`, one per prompt, replaces its negative prompt."""
    from diffusers.image_processor import VaeImageProcessor

    s = sample or SampleConfig()
    if len(prompts) != len(seeds):
        raise CoverforgeError(f"{len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt")
    guidance_scale = s.guidance_scale
    width, height = s.width or gen.native_size, s.height or gen.native_size
    check_size(width, height, gen)
    f = gen.vae_scale_factor
    negatives = [s.negative_prompt] * len(prompts) if negative_prompts is None else list(negative_prompts)
    if family_of(gen.family).has_flow:
        return generate_flow(gen, prompts, seeds, s, width, height, negatives, progress)
    unet = gen.unet
    device, dtype = unet.device, unet.dtype
    cfg = guidance_scale > 1.0 and unet.config.time_cond_proj_dim is None

    if cfg:
        cond, uncond = gen.conditioner.encode_pair(prompts, negatives, gen.zero_empty_negative)
        # Stock order: negative first, then positive.
        embeds = torch.cat([uncond.hidden, cond.hidden]).to(device, dtype)
        pooled = None if cond.pooled is None else torch.cat([uncond.pooled, cond.pooled]).to(device, dtype)
    else:
        cond = gen.conditioner.encode(prompts)
        embeds, pooled = cond.hidden.to(device, dtype), None if cond.pooled is None else cond.pooled.to(device, dtype)
    added = None
    if pooled is not None:
        time_ids = sdxl_time_ids((height, width), (0, 0), (height, width)).to(device, dtype)
        added = {"text_embeds": pooled, "time_ids": time_ids.repeat(embeds.shape[0], 1)}

    scheduler = make_sampler(s.sampler, gen.scheduler_config, gen.family)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    shape = (1, unet.config.in_channels, height // f, width // f)
    # One draw per image from its own generator: the image does not depend on its batch-mates.
    latents = torch.cat([torch.randn(shape, generator=g, dtype=dtype) for g in generators]).to(device)
    scheduler.set_timesteps(s.steps, device=device)
    latents = latents * scheduler.init_noise_sigma
    extra = _step_kwargs(scheduler, generators)
    timesteps = scheduler.timesteps
    if progress:
        from tqdm.auto import tqdm

        timesteps = tqdm(timesteps, desc="sampling", leave=False)
    for t in timesteps:
        model_in = torch.cat([latents] * 2) if cfg else latents
        model_in = scheduler.scale_model_input(model_in, t)
        noise = unet(model_in, t, encoder_hidden_states=embeds, added_cond_kwargs=added, return_dict=False)[0]
        if cfg:
            noise_uncond, noise_text = noise.chunk(2)
            noise = noise_uncond + guidance_scale * (noise_text - noise_uncond)
        latents = scheduler.step(noise, t, latents, **extra, return_dict=False)[0]

    if gen.vae is not None:
        images = decode_latents(gen.vae, latents)
    else:
        images = latents
    return VaeImageProcessor(vae_scale_factor=f).postprocess(images.float(), output_type="pil")


def _step_kwargs(scheduler, generators) -> dict:
    """Pass eta / generator only to schedulers that take them, as the stock pipelines do."""
    import inspect

    params = set(inspect.signature(scheduler.step).parameters)
    kw = {}
    if "eta" in params:
        kw["eta"] = 0.0
    if "generator" in params:
        kw["generator"] = generators
    return kw
