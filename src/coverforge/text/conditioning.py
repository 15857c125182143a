"""Long-prompt text conditioning: prompts in, UNet conditioning out, the same for every caller.

Training, caching, validation sampling, generation and evaluation all call `TextConditioner`, so
the prompt the model learns from is the prompt it is sampled with. The families differ only in
their list of `EncoderSpec`s (which layer, whether the final layer norm applies, who gives the
pooled embedding); chunking, padding and concatenation are shared.

For prompts of 75 tokens or fewer the output equals the stock diffusers `encode_prompt` bit for
bit: one chunk, BOS + tokens + EOS + padding, through the same layers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from coverforge.config import TextConfig
from coverforge.text.chunking import WINDOW, Chunked, chunk_prompt, window_ids
from coverforge.models.families import family_of

MEMO_PROMPTS = 50_000
"""Prompts whose token windows `remember_tokens` keeps: about 3.5 KB each for SDXL (two encoders,
five int32 windows), so under 200 MB."""


@dataclass
class EncoderSpec:
    """How one text encoder contributes to the conditioning."""

    tokenizer: object
    encoder: torch.nn.Module
    hidden_layer: int
    """Index into `hidden_states`; None-equivalent -1 with final_norm=True means last_hidden_state."""
    final_norm: bool
    """Apply the encoder's final layer norm to the chosen hidden state (SD 1.x/2.x do; SDXL doesn't)."""
    gives_pooled: bool = False

    def layers_read(self, n_layers: int) -> int:
        """How many of the encoder's `n_layers` transformer layers can reach the conditioning.

        `hidden_states[0]` is the embedding output, `hidden_states[i]` layer i-1's output, so
        reading index -(k+1) leaves the last k layers unread, unless the pooled embedding (made
        from the last layer) is used. Training what is never read gives it no gradient: dead
        weight in the saved file, and in data-parallel runs DDP's reducer fails at the second step."""
        return n_layers if self.gives_pooled else n_layers + 1 + self.hidden_layer

    @property
    def reads_final_norm(self) -> bool:
        return self.final_norm or self.gives_pooled


@dataclass
class Conditioning:
    """What the denoiser is conditioned on."""

    hidden: torch.Tensor  # (B, 77 * n_chunks, D); SDXL: D = D1 + D2; LLM encoders: (B, L, D), zero-padded
    pooled: torch.Tensor | None = None  # SDXL: (B, projection_dim)
    n_chunks: int = 1
    text_chunks: list[int] | None = None
    """Per prompt, how many of the n_chunks hold its text (the rest pad the batch)."""
    mask: torch.Tensor | None = None
    """LLM encoders: (B, L) 1 where `hidden` holds a prompt token, 0 where it pads the batch."""

    def to(self, *args, **kwargs) -> "Conditioning":
        hidden = self.hidden.to(*args, **kwargs)
        pooled = None if self.pooled is None else self.pooled.to(*args, **kwargs)
        mask = None if self.mask is None else self.mask.to(hidden.device)  # a mask keeps its dtype
        return Conditioning(hidden, pooled, self.n_chunks, self.text_chunks, mask)

    def select(self, index) -> "Conditioning":
        pooled = None if self.pooled is None else self.pooled[index]
        mask = None if self.mask is None else self.mask[index]
        return Conditioning(self.hidden[index], pooled, self.n_chunks, mask=mask)


def encoder_specs(family: str, tokenizers: list, encoders: list, clip_skip: int = 0) -> list[EncoderSpec]:
    """The family's recipe (models/families.py), matching what the stock diffusers pipelines do:
    clip_skip k reads k layers further down than the family does."""
    reads = family_of(family).text
    return [EncoderSpec(tok, enc, read.hidden_offset - clip_skip, final_norm=read.final_norm, gives_pooled=read.pooled)
            for tok, enc, read in zip(tokenizers, encoders, reads)]


class TextConditioner:
    """Encodes prompts of any length for one model family (see module docstring)."""

    def __init__(self, family: str, tokenizers: list, encoders: list, config: TextConfig | None = None):
        self.family = family
        self.config = config or TextConfig()
        self.specs = encoder_specs(family, tokenizers, encoders, self.config.clip_skip)
        self._windows_memo: dict[str, list[torch.Tensor]] | None = None  # see remember_tokens
        self._memo_limit = 0

    @classmethod
    def from_parts(cls, parts, config: TextConfig | None = None) -> "TextConditioner":
        tokenizers = [t for t in (parts.tokenizer, parts.tokenizer_2) if t is not None]
        return cls(parts.family, tokenizers, parts.text_encoders, config)

    def remember_tokens(self, limit: int = MEMO_PROMPTS) -> None:
        """Keep each prompt's token windows once computed (up to `limit` prompts, then no more are
        added): training with trained text encoders sees every prompt once an epoch, and chunking
        is then the only per-step text work that does not depend on the weights."""
        self._windows_memo = {}
        self._memo_limit = limit

    # --- tokens --------------------------------------------------------------------------------

    def chunk(self, prompts: list[str]) -> list[list[Chunked]]:
        """Per encoder, per prompt: the chunked token ids. Each encoder chunks with its own tokenizer:
        SDXL's two share a vocabulary, but the second splits off its pad token "!" as a special
        token, so a prompt with "!" can tokenize (and chunk) differently."""
        return [[chunk_prompt(s.tokenizer, p, self.config.max_tokens) for p in prompts] for s in self.specs]

    def _prompt_windows(self, prompts: list[str]) -> list[list[torch.Tensor]]:
        """Per prompt, per encoder: its (k, 77) window ids, k = the chunks holding its text."""
        memo = self._windows_memo
        todo = [p for p in dict.fromkeys(prompts) if memo is None or p not in memo]
        found: dict[str, list[torch.Tensor]] = {}
        if todo:
            chunked = self.chunk(todo)
            for i, p in enumerate(todo):
                found[p] = [torch.tensor([window_ids(spec.tokenizer, ch) for ch in per_prompt[i].chunks], dtype=torch.int32)
                            for spec, per_prompt in zip(self.specs, chunked)]
            if memo is not None:
                for p in todo[: max(0, self._memo_limit - len(memo))]:
                    memo[p] = found[p]
        return [found[p] if p in found else memo[p] for p in prompts]

    def _windows(self, prompts: list[str], min_chunks: int = 1) -> tuple[list[torch.Tensor], list[list[int]]]:
        """Per encoder: (B, n, 77) ids and, per prompt, how many of its n windows hold text."""
        per_prompt = self._prompt_windows(prompts)
        n = max(min_chunks, *(w.shape[0] for rows in per_prompt for w in rows))
        windows, real = [], []
        for e, spec in enumerate(self.specs):
            empty = torch.tensor(window_ids(spec.tokenizer, []), dtype=torch.int32)
            rows = [rows[e] for rows in per_prompt]
            windows.append(torch.stack([torch.cat([w, empty.expand(n - w.shape[0], -1)]) for w in rows]).long())
            real.append([w.shape[0] for w in rows])
        return windows, real

    def token_windows(self, prompts: list[str], min_chunks: int = 1) -> tuple[list[torch.Tensor], list[int]]:
        """Per encoder (B, n, 77) ids, and per prompt how many of its chunks hold text.

        A batch is padded to its longest prompt's chunk count with empty-prompt chunks, identical for
        every sample.
        """
        windows, real = self._windows(prompts, min_chunks)
        return windows, real[0]

    # --- embeddings ----------------------------------------------------------------------------

    def _run_encoder(self, spec: EncoderSpec, ids: torch.Tensor, real: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, length = ids.shape
        encoder = spec.encoder
        device = next(encoder.parameters()).device
        # Every window is its own sequence, so the empty windows padding a batch are all the same:
        # encode the windows holding text and one empty window, then lay them out as (B, n). On
        # 200-400-token prompts (3-6 windows) this skips 11% of the windows at batch 4 and more at
        # larger batches, and with trained encoders a step costs the batch's own tokens.
        padded = n > 1 and min(real) < n
        if padded:
            kept = [ids[i, :k] for i, k in enumerate(real)]
            pad_row = sum(real)
            kept.append(ids[real.index(min(real)), n - 1 : n])  # an empty window
            flat = torch.cat(kept)
            starts = [0, *itertools.accumulate(real)]
            layout = torch.tensor([starts[i] + j if j < real[i] else pad_row for i in range(b) for j in range(n)], device=device)
        else:
            flat = ids.reshape(b * n, length)
        out = encoder(flat.to(device), output_hidden_states=True)
        if spec.hidden_layer == -1 and spec.final_norm:
            hidden = out.last_hidden_state
        else:
            hidden = out.hidden_states[spec.hidden_layer]
            if spec.final_norm:
                # Through a DDP wrapper in multi-process training, the model is `.module`.
                # CLIPTextModel keeps final_layer_norm at the top level in transformers 5, the
                # projection model under .text_model.
                model = getattr(encoder, "module", encoder)
                hidden = getattr(model, "text_model", model).final_layer_norm(hidden)
        pooled = out.text_embeds if spec.gives_pooled else None
        if padded:
            hidden = hidden.index_select(0, layout)
            pooled = None if pooled is None else pooled.index_select(0, layout)
        hidden = hidden.reshape(b, n * length, -1)  # (B, 77 * n, D)
        pooled = None if pooled is None else pooled.reshape(b, n, -1)  # (B, n, P)
        return hidden, pooled

    def _pool(self, pooled: torch.Tensor, real_chunks: list[int]) -> torch.Tensor:
        mode = self.config.pooled
        if mode == "first":
            return pooled[:, 0]
        if mode == "last":
            return torch.stack([pooled[i, k - 1] for i, k in enumerate(real_chunks)])
        # mean over chunks holding text only: padding chunks say nothing about the book.
        return torch.stack([pooled[i, :k].mean(0) for i, k in enumerate(real_chunks)])

    def encode(self, prompts: list[str], min_chunks: int = 1) -> Conditioning:
        windows, real = self._windows(prompts, min_chunks)
        hiddens, pooled = [], None
        for spec, ids, counts in zip(self.specs, windows, real):
            h, p = self._run_encoder(spec, ids, counts)
            hiddens.append(h)
            if p is not None:
                pooled = self._pool(p, counts)
        return Conditioning(torch.cat(hiddens, dim=-1), pooled, windows[0].shape[1], real[0])

    def stored(self, cond: Conditioning) -> list[dict[str, torch.Tensor]]:
        """Per prompt, what the text cache keeps of an encoded batch: its own chunks, unpadded."""
        rows = []
        for i, chunks in enumerate(cond.text_chunks):
            entry = {"hidden": cond.hidden[i, : chunks * WINDOW]}
            if cond.pooled is not None:
                entry["pooled"] = cond.pooled[i]
            rows.append(entry)
        return rows

    def from_stored(self, entries: list[dict[str, torch.Tensor]], empty: dict[str, torch.Tensor]) -> Conditioning:
        """A batch from cached entries, padded with the empty prompt's chunk as `encode` pads."""
        pad = empty["hidden"][:WINDOW]
        n = max(e["hidden"].shape[0] // WINDOW for e in entries)
        rows = [e["hidden"] for e in entries]
        hidden = torch.stack([r if r.shape[0] == n * WINDOW else torch.cat([r, pad.repeat(n - r.shape[0] // WINDOW, 1)]) for r in rows])
        pooled = torch.stack([e["pooled"] for e in entries]) if "pooled" in entries[0] else None
        return Conditioning(hidden, pooled, n)

    def encode_pair(self, prompts: list[str], negatives: list[str], zero_empty_negative: bool = False) -> tuple[Conditioning, Conditioning]:
        """Positive and negative conditioning with the same chunk count, for classifier-free guidance.

        zero_empty_negative: SDXL's `force_zeros_for_empty_prompt`; an empty negative becomes zeros.
        """
        cond = self.encode(prompts)
        n = cond.n_chunks
        if zero_empty_negative and all(not s for s in negatives):
            pooled = None if cond.pooled is None else torch.zeros_like(cond.pooled)
            return cond, Conditioning(torch.zeros_like(cond.hidden), pooled, n)
        uncond = self.encode(negatives, min_chunks=n)
        if uncond.n_chunks > n:  # a negative longer than the prompt: pad the prompt instead
            cond = self.encode(prompts, min_chunks=uncond.n_chunks)
        return cond, uncond


def sdxl_time_ids(original_size: tuple[int, int], crop_top_left: tuple[int, int], target_size: tuple[int, int]) -> torch.Tensor:
    """SDXL micro-conditioning (Podell et al. 2023, sec. 2.2): (orig h, w, crop top, left, target h, w)."""
    return torch.tensor([*original_size, *crop_top_left, *target_size], dtype=torch.float32)
