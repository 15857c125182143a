"""A small text-conditional model built from config, for the from-scratch recipe.

Pixel space by default (no VAE: at 32-64 px a VAE costs more than it saves), with a small CLIP
text encoder over the real CLIP vocabulary. It is written in the diffusers folder layout
(`unet/`, `text_encoder/`, `tokenizer/`, `scheduler/`, `model_index.json`) so the same loader
reads it back.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from coverforge.config import ModelConfig
from coverforge.models.loading import ModelParts, load_folder
from coverforge.models.tokenizer import build_clip_tokenizer


def build_scratch_parts(cfg: ModelConfig, prediction_type: str, seed: int) -> ModelParts:
    """A fresh model; `cfg.scratch_space == 'latent'` borrows the VAE of the model at `cfg.path`."""
    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer()
    width = cfg.scratch_cross_attention_dim
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=width, intermediate_size=width * 4, num_hidden_layers=2,
            num_attention_heads=max(1, width // 32), max_position_embeddings=77, hidden_act="quick_gelu",
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    )
    vae = None
    channels = 3
    if cfg.scratch_space == "latent":
        vae = load_folder(cfg.path).vae
        channels = vae.config.latent_channels
    n, k = len(cfg.scratch_channels), cfg.scratch_attention_levels
    # Attention on the lowest-resolution blocks only: cheap, and where layout is decided.
    down = ("DownBlock2D",) * (n - k) + ("CrossAttnDownBlock2D",) * k
    up = ("CrossAttnUpBlock2D",) * k + ("UpBlock2D",) * (n - k)
    unet = UNet2DConditionModel(
        sample_size=cfg.scratch_sample_size, in_channels=channels, out_channels=channels, layers_per_block=cfg.scratch_layers_per_block,
        block_out_channels=tuple(cfg.scratch_channels), down_block_types=down, up_block_types=up,
        cross_attention_dim=width, attention_head_dim=8, norm_num_groups=min(32, min(cfg.scratch_channels)),
        addition_embed_type="text" if cfg.scratch_text_pooling else None,
        addition_embed_type_num_heads=max(1, width // 32),
        resnet_time_scale_shift="scale_shift" if cfg.scratch_scale_shift else "default",
    )
    # Cosine-like schedule (Nichol & Dhariwal 2021) suits small images better than scaled_linear.
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction_type or "epsilon")
    if cfg.scratch_noise_shift != 1.0:
        # Written as explicit betas, so every sampler built from the saved config follows the shift.
        betas = shifted_betas(scheduler.alphas_cumprod, cfg.scratch_noise_shift)
        scheduler = DDPMScheduler(num_train_timesteps=1000, trained_betas=betas.tolist(), prediction_type=prediction_type or "epsilon")
    return ModelParts(
        family="sd15", unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        # Without diffusers' private keys (`_use_default_values`), which would make a sampler built
        # from this config ignore fields such as timestep_spacing.
        scheduler_config={k: v for k, v in scheduler.config.items() if not k.startswith("_")}, source="scratch",
    )


def shifted_betas(alphas_cumprod: torch.Tensor, shift: float, max_beta: float = 0.999) -> torch.Tensor:
    """Betas whose signal-to-noise ratio is the given schedule's divided by shift**2 at every step.

    The cosine schedule decides an image's overall palette and layout only in its last few percent
    of timesteps at 32-48 px (the mean of ~1500 pixels stays readable through heavy noise); a shift
    of 2-4 spreads that decision over more of the steps that training draws uniformly.
    """
    a = alphas_cumprod.double()
    snr = a / (1.0 - a) / shift**2
    shifted = snr / (1.0 + snr)
    previous = torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return (1.0 - shifted / previous).clamp(0.0, max_beta).float()
