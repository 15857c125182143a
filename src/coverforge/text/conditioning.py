"""Long-prompt text conditioning: prompts in, UNet conditioning out, the same for every caller.

Training, caching, validation sampling, generation and evaluation all call `TextConditioner`, so
the prompt the model learns from is the prompt it is sampled with. The families differ only in
their list of `EncoderSpec`s (which layer, whether the final layer norm applies, who gives the
pooled embedding); chunking, padding and concatenation are shared.

For prompts of 75 tokens or fewer the output equals the stock diffusers `encode_prompt` bit for
bit: one chunk, BOS + tokens + EOS + padding, through the same layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from coverforge.config import TextConfig
from coverforge.text.chunking import Chunked, chunk_prompt, window_ids


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


@dataclass
class Conditioning:
    """What the UNet is conditioned on."""

    hidden: torch.Tensor  # (B, 77 * n_chunks, D); SDXL: D = D1 + D2
    pooled: torch.Tensor | None = None  # SDXL: (B, projection_dim)
    n_chunks: int = 1
    text_chunks: list[int] | None = None
    """Per prompt, how many of the n_chunks hold its text (the rest pad the batch)."""

    def to(self, *args, **kwargs) -> "Conditioning":
        pooled = None if self.pooled is None else self.pooled.to(*args, **kwargs)
        return Conditioning(self.hidden.to(*args, **kwargs), pooled, self.n_chunks, self.text_chunks)

    def select(self, index) -> "Conditioning":
        pooled = None if self.pooled is None else self.pooled[index]
        return Conditioning(self.hidden[index], pooled, self.n_chunks)


def encoder_specs(family: str, tokenizers: list, encoders: list, clip_skip: int = 0) -> list[EncoderSpec]:
    """The family's recipe, matching what the stock diffusers pipelines do."""
    if family in ("sd15", "sd2"):
        # clip_skip=0: last_hidden_state (already normed). clip_skip=k: hidden_states[-(k+1)], normed.
        return [EncoderSpec(tokenizers[0], encoders[0], -(clip_skip + 1), final_norm=True)]
    if family == "sdxl":
        # Both encoders' penultimate layer, un-normed; the pooled embedding is encoder 2's projection.
        layer = -(clip_skip + 2)
        return [
            EncoderSpec(tokenizers[0], encoders[0], layer, final_norm=False),
            EncoderSpec(tokenizers[1], encoders[1], layer, final_norm=False, gives_pooled=True),
        ]
    raise ValueError(f"unknown family {family!r}")


class TextConditioner:
    """Encodes prompts of any length for one model family (see module docstring)."""

    def __init__(self, family: str, tokenizers: list, encoders: list, config: TextConfig | None = None):
        self.family = family
        self.config = config or TextConfig()
        self.specs = encoder_specs(family, tokenizers, encoders, self.config.clip_skip)

    @classmethod
    def from_parts(cls, parts, config: TextConfig | None = None) -> "TextConditioner":
        tokenizers = [t for t in (parts.tokenizer, parts.tokenizer_2) if t is not None]
        return cls(parts.family, tokenizers, parts.text_encoders, config)

    # --- tokens --------------------------------------------------------------------------------

    def chunk(self, prompts: list[str]) -> list[list[Chunked]]:
        """Per encoder, per prompt: the chunked token ids (SDXL's tokenizers share a vocabulary)."""
        return [[chunk_prompt(s.tokenizer, p, self.config.max_tokens) for p in prompts] for s in self.specs]

    def token_windows(self, prompts: list[str], min_chunks: int = 1) -> tuple[list[torch.Tensor], list[list[int]]]:
        """Per encoder (B, n, 77) ids, and per prompt how many of its chunks hold text.

        A batch is padded to its longest prompt's chunk count with empty-prompt chunks, identical for
        every sample.
        """
        chunked = self.chunk(prompts)
        n = max(min_chunks, *(len(c.chunks) for per_enc in chunked for c in per_enc))
        windows = []
        for spec, per_prompt in zip(self.specs, chunked):
            rows = []
            for c in per_prompt:
                chunks = c.chunks + [[]] * (n - len(c.chunks))
                rows.append([window_ids(spec.tokenizer, ch) for ch in chunks])
            windows.append(torch.tensor(rows, dtype=torch.long))
        return windows, [len(c.chunks) for c in chunked[0]]

    # --- embeddings ----------------------------------------------------------------------------

    def _run_encoder(self, spec: EncoderSpec, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, length = ids.shape
        encoder = spec.encoder
        flat = ids.reshape(b * n, length).to(next(encoder.parameters()).device)
        out = encoder(flat, output_hidden_states=True)
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
        hidden = hidden.reshape(b, n * length, -1)  # (B, 77 * n, D)
        pooled = out.text_embeds.reshape(b, n, -1) if spec.gives_pooled else None  # (B, n, P)
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
        windows, real = self.token_windows(prompts, min_chunks)
        hiddens, pooled = [], None
        for spec, ids in zip(self.specs, windows):
            h, p = self._run_encoder(spec, ids)
            hiddens.append(h)
            if p is not None:
                pooled = self._pool(p, real)
        return Conditioning(torch.cat(hiddens, dim=-1), pooled, windows[0].shape[1], real)

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
