"""Generation for the flow families: their stock pipeline, run on coverforge's conditioning.

The pipeline's own denoising loop, scheduler (the family's flow-matching Euler with its shift),
latent packing and VAE decode run unchanged; coverforge hands it the prompt embeddings its
conditioner made (the same ones training saw, long prompts included) and one generator per seed,
so an image depends only on its prompt and seed, and a prompt that fits the stock encoder gives the
stock pipeline's pixels.
"""

from __future__ import annotations

import torch

from coverforge.config import SampleConfig
from coverforge.models.families import family_of
from coverforge.sampling.samplers import make_sampler


def flow_pipeline(gen, scheduler):
    """The family's stock pipeline around the generator's modules (the tokenizer and text encoder
    are the conditioner's; the pipeline never encodes here)."""
    f = family_of(gen.family)
    spec = gen.conditioner.specs[0]
    return f.pipeline_class()(scheduler=scheduler, vae=gen.vae, text_encoder=spec.encoder, tokenizer=spec.tokenizer,
                              transformer=gen.unet)


@torch.no_grad()
def generate_flow(gen, prompts: list[str], seeds: list[int], s: SampleConfig, width: int, height: int,
                  negatives: list[str], progress: bool = False):
    flow = family_of(gen.family).flow
    pipe = flow_pipeline(gen, make_sampler(s.sampler, gen.scheduler_config, gen.family))
    pipe.set_progress_bar_config(disable=not progress, leave=False)
    device, dtype = gen.unet.device, gen.unet.dtype
    cond = gen.conditioner.encode(prompts).to(device, dtype)
    uncond = gen.conditioner.encode(negatives).to(device, dtype) if s.guidance_scale > 1.0 else None
    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
    return pipe(**flow.pipeline_kwargs(cond, uncond, s.guidance_scale), num_inference_steps=s.steps, width=width,
                height=height, generator=generators, output_type="pil").images
