"""Z-Image (`ZImagePipeline`): Qwen3 reads a chat-templated prompt, the transformer takes lists.

Read from diffusers 0.42.1 `pipelines/z_image/pipeline_z_image.py`. The stock pipeline applies the
tokenizer's chat template (user turn, generation prompt, thinking on), pads to max_sequence_length,
reads `hidden_states[-2]` (no final norm) at the unmasked positions and passes one unpadded tensor
per prompt; the transformer takes a list of (C, 1, h, w) latents and the timestep as 1 - sigma, and
its output is the negated velocity. Latents use the FLUX VAE's shift and scale.
"""

from __future__ import annotations

import torch

from coverforge.models.flow_model import FlowModel, TokenizedPrompts, masked_rows

ATTN = ["attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0"]
FF = ["feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]
LORA_PRESETS = {"attn": ATTN, "attn+ff": ATTN + FF, "attn+conv": ATTN + FF + ["adaLN_modulation.0"]}
"""lora.unet_preset -> the transformer's modules that get adapters."""


class ZImage(FlowModel):
    def tokenize(self, tokenizer, prompts: list[str], limit: int) -> TokenizedPrompts:
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True,
                                               enable_thinking=True) for p in prompts]
        lengths = [len(ids) for ids in tokenizer(texts).input_ids]
        tokens = tokenizer(texts, padding="max_length", max_length=limit, truncation=True, return_tensors="pt")
        return TokenizedPrompts(tokens.input_ids, tokens.attention_mask.bool(), lengths)

    def vae_factor(self, vae) -> int:
        return 2 ** (len(vae.config.block_out_channels) - 1)

    def normalise(self, vae, z: torch.Tensor) -> torch.Tensor:
        return (z - vae.config.shift_factor) * vae.config.scaling_factor

    def predict(self, transformer, noisy, sigmas, hidden, mask):
        dtype = next(transformer.parameters()).dtype  # (through a DDP wrapper too)
        latents = list(noisy.to(dtype).unsqueeze(2).unbind(0))
        out = transformer(latents, (1 - sigmas).to(noisy.dtype), masked_rows(hidden, mask), return_dict=False)[0]
        return -torch.stack(out).squeeze(2).to(noisy.dtype)

    def pipeline_kwargs(self, cond, uncond, guidance_scale: float) -> dict:
        # Z-Image's own scale g means pos + g * (pos - neg): coverforge's scale is g + 1.
        kw = dict(prompt_embeds=masked_rows(cond.hidden, cond.mask), max_sequence_length=self.text_limit,
                  guidance_scale=guidance_scale - 1 if uncond is not None else 0.0)
        if uncond is not None:
            kw["negative_prompt_embeds"] = masked_rows(uncond.hidden, uncond.mask)
        return kw


Z_IMAGE = ZImage(
    text_limit=512, hidden_offset=-2, final_norm=False, latent_draw="mode")
