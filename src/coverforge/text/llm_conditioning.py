"""Prompt conditioning for the LLM text encoders of the flow families (Qwen-Image, Z-Image).

The same interface as `TextConditioner` (encode, encode_pair, stored / from_stored for the text
cache, `specs` for the recipe), used by the same callers. An LLM reads the book prompt whole up to
the family's limit (Qwen-Image 1024 tokens, Z-Image 512; `text.max_tokens` may lower it), so
there are no 77-token windows: the family's `FlowModel` wraps the prompt in its chat template and
tokenizes it as the stock pipeline does, and the embedding is the chosen hidden state at the
prompt's own positions. A prompt past the limit is cut with the same warning as the CLIP path.

For a prompt that fits, `encode` equals the stock pipeline's `encode_prompt` bit for bit; a batch
is zero-padded to its longest prompt with a mask, as Qwen-Image's pipeline pads (Z-Image's
pipeline takes the unpadded rows, which `FlowModel.pipeline_kwargs` gives it back).
"""

from __future__ import annotations

import logging

import torch

from coverforge.config import TextConfig
from coverforge.errors import CoverforgeError
from coverforge.models.families import family_of
from coverforge.models.flow_model import masked_rows, pad_rows
from coverforge.text.conditioning import Conditioning, encoder_specs

log = logging.getLogger(__name__)


class LLMConditioner:
    def __init__(self, family: str, tokenizers: list, encoders: list, config: TextConfig | None = None):
        self.family = family
        self.flow = family_of(family).flow
        self.config = config or TextConfig()
        if self.config.clip_skip:
            raise CoverforgeError(f"text.clip_skip = {self.config.clip_skip} applies to CLIP text encoders; the {family} "
                                  "model reads the layer its pipeline reads: set text.clip_skip = 0")
        self.specs = encoder_specs(family, tokenizers, encoders)
        self.limit = min(self.config.max_tokens, self.flow.text_limit)

    @property
    def tokenizer(self):
        return self.specs[0].tokenizer

    @property
    def encoder(self):
        return self.specs[0].encoder

    def encode(self, prompts: list[str]) -> Conditioning:
        tokens = self.flow.tokenize(self.tokenizer, prompts, self.limit)
        for prompt, n in zip(prompts, tokens.lengths):
            if n > self.limit:
                log.warning("prompt has %d tokens; dropped the last %d past the %d-token limit (text.max_tokens, %s reads "
                            "at most %d): %.60s...", n, n - self.limit, self.limit, self.family, self.flow.text_limit, prompt)
        device = next(self.encoder.parameters()).device
        out = self.encoder(input_ids=tokens.ids.to(device), attention_mask=tokens.mask.to(device), output_hidden_states=True)
        hidden = out.hidden_states[self.specs[0].hidden_layer]
        drop = self.flow.template_tokens()
        rows = [row[drop:][: self.limit] for row in masked_rows(hidden, tokens.mask.to(device))]
        return self._batch(rows)

    def _batch(self, rows: list[torch.Tensor]) -> Conditioning:
        hidden, mask = pad_rows(rows)
        return Conditioning(hidden, mask=mask)

    def encode_pair(self, prompts: list[str], negatives: list[str], zero_empty_negative: bool = False) -> tuple[Conditioning, Conditioning]:
        """Positive and negative conditioning (each padded on its own: the transformer masks them)."""
        return self.encode(prompts), self.encode(negatives)

    def stored(self, cond: Conditioning) -> list[dict[str, torch.Tensor]]:
        return [{"hidden": row} for row in masked_rows(cond.hidden, cond.mask)]

    def from_stored(self, entries: list[dict[str, torch.Tensor]], empty: dict[str, torch.Tensor]) -> Conditioning:
        return self._batch([e["hidden"] for e in entries])
