"""The sampler (diffusers scheduler) a generation runs with, by the short name users write."""

from __future__ import annotations

from coverforge.config import NO_SAMPLE_PREDICTION, SAMPLERS, sample_prediction_refusal
from coverforge.errors import CoverforgeError
from coverforge.models.families import family_of


def make_sampler(name: str, base_config: dict, family: str = "sd15"):
    """A diffusers scheduler by short name, configured like the base model's (betas, prediction).
    The flow families sample with their own flow-matching scheduler only."""
    import diffusers

    f = family_of(family)
    if f.has_flow:
        if name != "euler":
            raise CoverforgeError(f"sample.sampler = {name!r}: the {family} model samples with its own flow-matching Euler "
                                  "scheduler; set sample.sampler = 'euler'")
        return getattr(diffusers, f.training_scheduler).from_config(base_config)
    if name not in SAMPLERS:
        raise CoverforgeError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    if base_config.get("prediction_type") == "sample" and name in NO_SAMPLE_PREDICTION:
        raise CoverforgeError(sample_prediction_refusal(name))
    return getattr(diffusers, SAMPLERS[name]).from_config(base_config)
