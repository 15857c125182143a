"""What a flow-matching transformer family (Qwen-Image, Z-Image) does its own way.

The SD families differ in a few facts (models/families.py); these differ in whole steps: how the
LLM text encoder reads a prompt, how VAE latents are normalised, how the transformer is called
(packed tokens or lists, which timestep convention) and which arguments the stock pipeline takes.
One subclass per family (models/qwen_image.py, models/z_image.py) states them; training, caching,
generation and saving call these methods instead of testing the family's name.

Conventions shared by both: latents are (B, C, h, w) after normalisation; the noisy sample at
sigma s is (1 - s) * x0 + s * noise and the network is trained to give the velocity noise - x0
(`predict` returns it in that convention whatever the transformer's own sign).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenizedPrompts:
    ids: torch.Tensor
    mask: torch.Tensor
    """The attention mask in the dtype the stock pipeline passes (it changes nothing, but bit for bit is bit for bit)."""
    lengths: list[int]
    """Per prompt, its templated token count before truncation (to warn when text is cut)."""


@dataclass(frozen=True)
class FlowModel:
    text_limit: int
    """The longest embedded prompt the family reads, in tokens (the stock pipeline's max_sequence_length cap)."""
    hidden_offset: int
    """Which of the LLM's `hidden_states` conditions the transformer."""
    final_norm: bool
    """Whether that hidden state has passed the LLM's final norm (hidden_states[-1] has)."""
    latent_draw: str
    """How a training latent is taken from the VAE posterior: 'sample' or 'mode' (as the family's own trainer does)."""
    native_size: int = 1024
    patch: int = 2
    text_multiple: int = 1
    """Training pads a batch's prompt embeddings (masked) to a multiple of this many tokens, so runs
    see a few text lengths instead of one per batch's longest prompt, and a traced (or compiled)
    transformer is reused (training/traced_unet.py). 1 where the call drops padding itself."""

    # --- text -------------------------------------------------------------------------------

    def tokenize(self, tokenizer, prompts: list[str], limit: int) -> TokenizedPrompts:
        raise NotImplementedError

    def template_tokens(self) -> int:
        """Leading template tokens dropped from the embedding (Qwen-Image's system turn)."""
        return 0

    # --- latents ----------------------------------------------------------------------------

    def vae_factor(self, vae) -> int:
        raise NotImplementedError

    def posterior(self, vae, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [-1, 1] -> the posterior's parameters (B, 2C, h, w)."""
        return vae.encode(pixels).latent_dist.parameters

    def normalise(self, vae, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # --- the transformer --------------------------------------------------------------------

    def predict(self, transformer, noisy: torch.Tensor, sigmas: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The velocity (noise - x0) the transformer predicts for `noisy` (B, C, h, w) at `sigmas` (B,)."""
        raise NotImplementedError

    def trace_branch(self, mask: torch.Tensor) -> Hashable:
        """What `predict` reads back from the text mask into Python, and so bakes into a trace
        (`run.trace_unet`, training/traced_unet.py): a trace is replayed only for calls with the same
        value. By default the whole mask (one trace per pattern of prompt lengths)."""
        return mask.bool().cpu().numpy().tobytes()

    def unread_modules(self, transformer) -> list[str]:
        """Modules whose output never reaches the prediction: training them is dead weight, and in a
        data-parallel run DDP's reducer fails on their missing gradients."""
        return []

    def pipeline_kwargs(self, cond, uncond, guidance_scale: float) -> dict:
        """The stock pipeline's arguments for precomputed conditioning (uncond None: no guidance).
        `guidance_scale` is coverforge's: prediction = uncond + g * (cond - uncond), 1 = none."""
        raise NotImplementedError


def masked_rows(hidden: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Per prompt, its hidden states at the positions the mask keeps."""
    return [h[m.bool()] for h, m in zip(hidden, mask)]


def pad_rows(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad (L_i, D) rows to the longest, with a (B, L) 0/1 mask, as Qwen-Image's pipeline pads."""
    longest = max(r.shape[0] for r in rows)
    hidden = torch.stack([torch.cat([r, r.new_zeros(longest - r.shape[0], r.shape[1])]) for r in rows])
    mask = torch.stack([torch.cat([torch.ones(r.shape[0], dtype=torch.long), torch.zeros(longest - r.shape[0], dtype=torch.long)])
                        for r in rows]).to(hidden.device)
    return hidden, mask


def pad_text(hidden: torch.Tensor, mask: torch.Tensor, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, D) embeddings and their (B, L) mask, zero-padded and masked to a multiple of `multiple` tokens."""
    extra = -hidden.shape[1] % multiple
    if not extra:
        return hidden, mask
    return torch.nn.functional.pad(hidden, (0, 0, 0, extra)), torch.nn.functional.pad(mask, (0, extra))
