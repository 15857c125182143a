"""Text-embedding cache: each prompt's long-prompt conditioning, stored unpadded.

Each prompt is stored unpadded, as its conditioner's `stored` gives it: a CLIP prompt of n chunks
as its (77 * n, D) hidden states (and SDXL's pooled embedding, already pooled over its own
chunks), an LLM prompt as its (L, D) token states. `from_stored` pads a batch as `encode` pads it
(CLIP: with the empty prompt's chunk, every 77-token window being encoded on its own; LLM: with
zeros and a mask), so a cached batch equals an encoded one.

Only valid while every text encoder is frozen; a trained encoder makes the conditioning change
each step, and then training encodes prompts on the fly (only latents are cached).
"""

from __future__ import annotations

import torch

from coverforge.cache.keys import digest, module_fingerprint, prompt_key, tokenizer_fingerprint
from coverforge.cache.store import ShardStore
from coverforge.text.conditioning import Conditioning, TextConditioner
from coverforge.text.llm_conditioning import LLMConditioner


def text_setting(conditioner: TextConditioner | LLMConditioner) -> str:
    """Everything that changes a prompt's embedding: family, text options, tokenizers, encoder weights and layers."""
    c = conditioner.config
    specs = [(tokenizer_fingerprint(s.tokenizer), module_fingerprint(s.encoder), s.hidden_layer, s.final_norm, s.gives_pooled,
              str(next(s.encoder.parameters()).dtype)) for s in conditioner.specs]
    return digest("text", conditioner.family, c.max_tokens, c.clip_skip, c.pooled, specs)


class CachedConditioner:
    """`encode(prompts)` from the cache, with the conditioner's own `encode` output for the same prompts."""

    def __init__(self, store: ShardStore, device: torch.device, conditioner):
        self.store = store
        self.device = device
        self.conditioner = conditioner
        self._empty = None

    def encode(self, prompts: list[str]) -> Conditioning:
        entries = [self.store.get(prompt_key(p)) for p in prompts]
        if self._empty is None:
            self._empty = self.store.get(prompt_key(""))
        return self.conditioner.from_stored(entries, self._empty).to(self.device)


@torch.no_grad()
def encode_missing(store: ShardStore, conditioner: TextConditioner | LLMConditioner, prompts: list[str], batch_size: int, tag: str, progress=None) -> int:
    """Encode the prompts not in the store as one new shard, batched by length (so batches hold
    prompts of similar chunk counts and little padding is encoded); each stored without padding."""
    todo = sorted({p for p in prompts if prompt_key(p) not in store}, key=lambda p: (len(p), p))
    entries = {}
    for start in range(0, len(todo), batch_size):
        group = todo[start : start + batch_size]
        for p, entry in zip(group, conditioner.stored(conditioner.encode(group))):
            entries[prompt_key(p)] = entry
        if progress is not None:
            progress.update(len(group))
    store.write_shard(entries, tag, {"kind": "text"})
    return len(entries)

