"""Qwen-Image (`QwenImagePipeline`): Qwen2.5-VL reads a chat-templated prompt, 2x2-packed latents.

Read from diffusers 0.42.1 `pipelines/qwenimage/pipeline_qwenimage.py` (docs/families-plan.md has
the table). The stock pipeline wraps the prompt in a system + user turn, encodes it, keeps the last
hidden state (after the final norm) at the unmasked positions and drops the system turn's 34
tokens; the transformer takes packed (B, h/2 * w/2, 4C) latents and the timestep as sigma.
"""

from __future__ import annotations

import torch

from coverforge.models.flow_model import FlowModel, TokenizedPrompts

TEMPLATE = ("<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
            "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n")
DROPPED = 34  # the system turn's tokens, left out of the embedding
TOKENIZER_LIMIT = 1024  # the stock tokenizer call truncates at this + DROPPED

ATTN = ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out"]
FF = ["img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj", "txt_mlp.net.2"]
LORA_PRESETS = {"attn": ATTN, "attn+ff": ATTN + FF, "attn+conv": ATTN + FF + ["img_mod.1", "txt_mod.1"]}
"""lora.unet_preset -> the transformer's modules that get adapters."""


class QwenImage(FlowModel):
    def tokenize(self, tokenizer, prompts: list[str], limit: int) -> TokenizedPrompts:
        texts = [TEMPLATE.format(p) for p in prompts]
        lengths = [len(ids) for ids in tokenizer(texts).input_ids]
        tokens = tokenizer(texts, max_length=TOKENIZER_LIMIT + DROPPED, padding=True, truncation=True, return_tensors="pt")
        return TokenizedPrompts(tokens.input_ids, tokens.attention_mask, [n - DROPPED for n in lengths])

    def template_tokens(self) -> int:
        return DROPPED

    def vae_factor(self, vae) -> int:
        return 2 ** len(vae.temperal_downsample)

    def posterior(self, vae, pixels: torch.Tensor) -> torch.Tensor:
        # A video VAE: one frame in (B, 3, 1, H, W), posterior (B, 2C, 1, h, w) out.
        return vae.encode(pixels.unsqueeze(2)).latent_dist.parameters.squeeze(2)

    def normalise(self, vae, z: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(vae.config.latents_mean, device=z.device, dtype=z.dtype).view(1, -1, 1, 1)
        std = torch.tensor(vae.config.latents_std, device=z.device, dtype=z.dtype).view(1, -1, 1, 1)
        return (z - mean) / std

    def predict(self, transformer, noisy, sigmas, hidden, mask):
        b, c, h, w = noisy.shape
        packed = noisy.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)
        out = transformer(hidden_states=packed, timestep=sigmas.to(packed.dtype), encoder_hidden_states=hidden,
                          encoder_hidden_states_mask=None if mask.all() else mask, img_shapes=[[(1, h // 2, w // 2)]] * b,
                          return_dict=False)[0]
        return out.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)

    def trace_branch(self, mask: torch.Tensor) -> bool:
        # The mask reaches the attention as tensor data; only whether it is passed at all is decided in Python.
        return bool(mask.all())

    def unread_modules(self, transformer) -> list[str]:
        # The last block's text stream is computed and dropped: only the image tokens go on to norm_out,
        # so its text queries (whose rows of the joint attention are text outputs), their norm, the text
        # output projection and the text MLP get no gradient (keys and values still reach the image).
        last = f"transformer_blocks.{len(transformer.transformer_blocks) - 1}"
        return [f"{last}.attn.add_q_proj", f"{last}.attn.norm_added_q", f"{last}.attn.to_add_out", f"{last}.txt_mlp"]

    def pipeline_kwargs(self, cond, uncond, guidance_scale: float) -> dict:
        kw = dict(prompt_embeds=cond.hidden, prompt_embeds_mask=cond.mask, max_sequence_length=self.text_limit, true_cfg_scale=1.0)
        if uncond is not None:
            # "True CFG", renormalised to the conditional prediction's norm, with the usual scale.
            kw.update(negative_prompt_embeds=uncond.hidden, negative_prompt_embeds_mask=uncond.mask, true_cfg_scale=guidance_scale)
        return kw


QWEN_IMAGE = QwenImage(
    text_limit=1024, hidden_offset=-1, final_norm=True, latent_draw="sample",
    # Masked text tokens change nothing but rounding (the attention skips them; 3.6e-7 at most on the
    # tiny model) and cost 8 tokens on average; a 64-cover run sees 3 text lengths instead of 25.
    text_multiple=16)
