"""Tiny models with random weights in the exact diffusers layout, for offline dry runs and tests.

Shapes mimic the real families at toy scale: an 8x VAE with the real scaling factors, SD 2.x's
v-prediction and pad id 0, SDXL's two text encoders of different widths with `text_time`
conditioning and a pooled projection. Same seed, byte-identical folder. The flow-matching
transformer families (qwen-image, z-image) are built in `coverforge.models.tiny_flow`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from coverforge.models.tokenizer import build_clip_tokenizer, save_tokenizer

# Real scaling factors: SD 1.x/2.x VAE and the SDXL VAE.
VAE_SCALING = {"sd15": 0.18215, "sd2": 0.18215, "sdxl": 0.13025}
PIPELINE_CLASS = {"sd15": "StableDiffusionPipeline", "sd2": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}
FLOW_FAMILIES = ("qwen-image", "z-image")  # built by coverforge.models.tiny_flow
TIME_EMBED_DIM = 8  # SDXL: per-number Fourier width for the six time ids (256 in the real model)


def _clip_config(hidden: int, layers: int, pad_id: int, act: str, vocab: int, projection: int = 0) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act=act,
        projection_dim=projection or hidden,
        pad_token_id=pad_id,
        bos_token_id=49406 if vocab == 49408 else vocab - 2,
        eos_token_id=49407 if vocab == 49408 else vocab - 1,
    )


def _vae(family: str) -> AutoencoderKL:
    # Four blocks = three downsamplings = the real 8x spatial factor.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=VAE_SCALING[family],
        force_upcast=family == "sdxl",
    )


def _unet(family: str, cross_dim: int, pooled_dim: int = 0) -> UNet2DConditionModel:
    common = dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_dim,
        norm_num_groups=8,
    )
    if family == "sd15":
        return UNet2DConditionModel(attention_head_dim=8, **common)
    if family == "sd2":
        return UNet2DConditionModel(attention_head_dim=(4, 8), use_linear_projection=True, **common)
    return UNet2DConditionModel(
        attention_head_dim=(4, 8),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + pooled_dim,
        transformer_layers_per_block=(1, 1),
        **common,
    )


def _scheduler(family: str) -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction" if family == "sd2" else "epsilon",
        steps_offset=1,
        timestep_spacing="leading",
    )


def write_tiny_model(family: str, out: str | Path, seed: int = 0) -> Path:
    """Write a tiny `family` model (sd15 | sd2 | sdxl | qwen-image | z-image) into `out` and return the folder."""
    if family in FLOW_FAMILIES:
        from coverforge.models.tiny_flow import write_tiny_flow_model  # imports the Qwen models only when asked

        return write_tiny_flow_model(family, out, seed=seed)
    if family not in PIPELINE_CLASS:
        raise ValueError(f"unknown family {family!r}; choose sd15, sd2, sdxl, {' or '.join(FLOW_FAMILIES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # SD 1.x: CLIP-L (quick_gelu, EOS padding). SD 2.x / SDXL's second encoder: OpenCLIP (gelu, pad 0).
    tok_eos = build_clip_tokenizer(pad_token="<|endoftext|>")
    tok_zero = build_clip_tokenizer(pad_token="!")
    vocab = len(tok_eos)
    parts: dict[str, tuple[str, str]] = {}
    if family == "sd15":
        te = CLIPTextModel(_clip_config(32, 2, tok_eos.pad_token_id, "quick_gelu", vocab))
        components = {"text_encoder": te, "tokenizer": tok_eos}
        unet = _unet(family, 32)
    elif family == "sd2":
        te = CLIPTextModel(_clip_config(32, 2, 0, "gelu", vocab))
        components = {"text_encoder": te, "tokenizer": tok_zero}
        unet = _unet(family, 32)
    else:
        # Different widths on purpose (768 and 1280 in the real model): catches concat mix-ups.
        te1 = CLIPTextModel(_clip_config(32, 2, tok_eos.pad_token_id, "quick_gelu", vocab))
        te2 = CLIPTextModelWithProjection(_clip_config(48, 2, 0, "gelu", vocab, projection=40))
        components = {"text_encoder": te1, "tokenizer": tok_eos, "text_encoder_2": te2, "tokenizer_2": tok_zero}
        unet = _unet(family, 32 + 48, pooled_dim=40)
    components.update(unet=unet, vae=_vae(family), scheduler=_scheduler(family))

    index = {"_class_name": PIPELINE_CLASS[family], "_diffusers_version": "0.42.1"}
    for name, obj in components.items():
        folder = out / name
        if name.startswith("tokenizer"):
            save_tokenizer(obj, folder)
            parts[name] = ("transformers", "CLIPTokenizer")
        elif name == "scheduler":
            obj.save_pretrained(folder)
            parts[name] = ("diffusers", type(obj).__name__)
        else:
            obj.save_pretrained(folder, safe_serialization=True)
            parts[name] = ("transformers" if name.startswith("text_encoder") else "diffusers", type(obj).__name__)
    if family == "sdxl":
        index["force_zeros_for_empty_prompt"] = True
    else:
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
        if family == "sd2":
            index["image_encoder"] = [None, None]
    for name in sorted(parts):
        index[name] = list(parts[name])
    (out / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return out
