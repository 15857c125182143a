"""Text-embedding cache: each prompt's long-prompt conditioning, stored unpadded.

A prompt of n chunks is stored as its (77 * n, D) hidden states (and SDXL's pooled embedding,
already pooled over its own chunks). A batch is padded to its longest prompt with the empty
prompt's chunk, which is exactly what `TextConditioner.encode` pads with: every 77-token window
goes through the encoder on its own, so a cached batch equals an encoded one.

Only valid while every text encoder is frozen; a trained encoder makes the conditioning change
each step, and then training encodes prompts on the fly (only latents are cached).
"""

from __future__ import annotations

import torch

from coverforge.cache.keys import digest, module_fingerprint, prompt_key, tokenizer_fingerprint
from coverforge.cache.store import ShardStore
from coverforge.text.chunking import WINDOW
from coverforge.text.conditioning import Conditioning, TextConditioner


def text_setting(conditioner: TextConditioner) -> str:
    """Everything that changes a prompt's embedding: family, text options, tokenizers, encoder weights and layers."""
    c = conditioner.config
    specs = [(tokenizer_fingerprint(s.tokenizer), module_fingerprint(s.encoder), s.hidden_layer, s.final_norm, s.gives_pooled,
              str(next(s.encoder.parameters()).dtype)) for s in conditioner.specs]
    return digest("text", conditioner.family, c.max_tokens, c.clip_skip, c.pooled, specs)


class CachedConditioner:
    """`encode(prompts)` from the cache, with `TextConditioner.encode`'s output for the same prompts."""

    def __init__(self, store: ShardStore, device: torch.device):
        self.store = store
        self.device = device
        self._empty = None

    def encode(self, prompts: list[str]) -> Conditioning:
        entries = [self.store.get(prompt_key(p)) for p in prompts]
        if self._empty is None:
            self._empty = self.store.get(prompt_key(""))["hidden"][:WINDOW]
        n = max(e["hidden"].shape[0] // WINDOW for e in entries)
        hidden = torch.stack([_pad(e["hidden"], n, self._empty) for e in entries]).to(self.device)
        pooled = torch.stack([e["pooled"] for e in entries]).to(self.device) if "pooled" in entries[0] else None
        return Conditioning(hidden, pooled, n)


def _pad(hidden: torch.Tensor, n_chunks: int, empty_chunk: torch.Tensor) -> torch.Tensor:
    missing = n_chunks - hidden.shape[0] // WINDOW
    return hidden if missing == 0 else torch.cat([hidden, empty_chunk.repeat(missing, 1)])


@torch.no_grad()
def encode_missing(store: ShardStore, conditioner: TextConditioner, prompts: list[str], batch_size: int, tag: str, progress=None) -> int:
    """Encode the prompts not in the store as one new shard, batched by length (so batches hold
    prompts of similar chunk counts and little padding is encoded); each stored without padding."""
    todo = sorted({p for p in prompts if prompt_key(p) not in store}, key=lambda p: (len(p), p))
    entries = {}
    for start in range(0, len(todo), batch_size):
        group = todo[start : start + batch_size]
        cond = conditioner.encode(group)
        for i, p in enumerate(group):
            entry = {"hidden": cond.hidden[i, : cond.text_chunks[i] * WINDOW]}
            if cond.pooled is not None:
                entry["pooled"] = cond.pooled[i]
            entries[prompt_key(p)] = entry
        if progress is not None:
            progress.update(len(group))
    store.write_shard(entries, tag, {"kind": "text"})
    return len(entries)

