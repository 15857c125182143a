"""What differs between model families, stated once per family.

The loop, the caches, generation, saving and export ask the family (`family_of(parts.family)`)
instead of testing its name. Each entry follows the stock diffusers pipeline of that family; the
detection of a family from a folder's configs is `models/loading.detect_family`.

Qwen-Image and Z-Image (flow-matching transformers with LLM text encoders) are recognised by
loading but have no entry yet: docs/families-plan.md lists what their entries will have to state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextRead:
    """How the conditioning reads one text encoder (with clip_skip 0)."""

    hidden_offset: int
    """Which of `hidden_states` is read, counted from the end: -1 the last layer's output, -2 the
    penultimate. clip_skip k moves it k layers further down."""
    final_norm: bool
    """Apply the encoder's final layer norm to it (SD 1.x / 2.x do; SDXL does not)."""
    pooled: bool = False
    """The encoder's projected pooled embedding conditions the model too (SDXL's second encoder);
    with it go SDXL's size and crop ids (text/conditioning.sdxl_time_ids)."""


@dataclass(frozen=True)
class Family:
    name: str
    pipeline: str
    """The diffusers pipeline class that loads, saves and runs this family's folders and LoRAs."""
    text: tuple[TextRead, ...]
    """One entry per text encoder, in the pipeline's order (text_encoder, text_encoder_2)."""
    zero_empty_negative: bool = False
    """An empty negative prompt conditions on zeros, not on the encoded "" (SDXL's force_zeros_for_empty_prompt)."""
    safety_checker_slots: bool = False
    """model_index.json names (empty) safety_checker and feature_extractor components."""
    kohya_text_prefixes: tuple[str, ...] = ("te",)
    """kohya's module-name prefix of each text encoder's adapters (lora_te_..., lora_te1_...)."""
    kohya_unet_original_names: bool = False
    """kohya names the UNet's adapters after the original (SGM) checkpoint's modules, not diffusers'."""

    @property
    def text_encoders(self) -> tuple[str, ...]:
        return ("text_encoder", "text_encoder_2")[: len(self.text)]

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.pipeline)


_SD_TEXT = (TextRead(-1, final_norm=True),)

FAMILIES = {
    "sd15": Family("sd15", "StableDiffusionPipeline", _SD_TEXT, safety_checker_slots=True),
    "sd2": Family("sd2", "StableDiffusionPipeline", _SD_TEXT, safety_checker_slots=True),
    "sdxl": Family(
        "sdxl", "StableDiffusionXLPipeline",
        # Both encoders' penultimate layer, un-normed; the pooled embedding is encoder 2's projection.
        (TextRead(-2, final_norm=False), TextRead(-2, final_norm=False, pooled=True)),
        zero_empty_negative=True, kohya_text_prefixes=("te1", "te2"), kohya_unet_original_names=True,
    ),
}


def family_of(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}") from None
