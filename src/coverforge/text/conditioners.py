"""Which conditioner reads a family's text encoders: the one constructor every stage calls."""

from __future__ import annotations

from coverforge.config import TextConfig
from coverforge.models.families import family_of
from coverforge.text.conditioning import TextConditioner
from coverforge.text.llm_conditioning import LLMConditioner


def make_conditioner(family: str, tokenizers: list, encoders: list, config: TextConfig | None = None):
    """CLIP windows (`TextConditioner`) for the SD families, an LLM read (`LLMConditioner`) for the flow families."""
    cls = LLMConditioner if family_of(family).has_flow else TextConditioner
    return cls(family, tokenizers, encoders, config)


def conditioner_from_parts(parts, config: TextConfig | None = None):
    tokenizers = [t for t in (parts.tokenizer, parts.tokenizer_2) if t is not None]
    return make_conditioner(parts.family, tokenizers, parts.text_encoders, config)
