"""Tiny flow-matching transformer models (Qwen-Image, Z-Image) with random weights in the diffusers layout.

What the real models have, these keep at toy width: the 8x VAE with 16 latent channels and the real
normalisation (Qwen-Image: per-channel latents_mean / latents_std, the defaults of
AutoencoderKLQwenImage; Z-Image: the FLUX VAE's scaling and shift factors), 2x2 patches, the real
scheduler configs (Qwen-Image: resolution-dependent exponential shift; Z-Image: a static shift of 3),
an LLM text encoder with grouped-query attention whose width differs from the transformer's, and the
Qwen2 tokenizer layout (`coverforge.models.bpe_tokenizer`). Same seed, byte-identical folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLQwenImage,
    FlowMatchEulerDiscreteScheduler,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen3Config, Qwen3Model

from coverforge.models.bpe_tokenizer import build_qwen_tokenizer, save_qwen_tokenizer

LATENT_CHANNELS = 16  # both families' VAEs
TEXT_WIDTH = 32  # the LLM's hidden size; the transformers below are 48 wide so a mix-up cannot pass
TEXT_HEADS, TEXT_KV_HEADS, TEXT_HEAD_DIM = 2, 1, 16  # grouped-query attention, as in the real encoders
HEAD_DIM = 16  # transformer head width: the three RoPE axes below add up to it
ROPE_AXES = (4, 6, 6)  # (frame/text position, height, width) as in the real (16, 56, 56) / (32, 48, 48)

# Real scheduler configs (Qwen/Qwen-Image and Tongyi-MAI/Z-Image scheduler_config.json).
QWEN_IMAGE_SCHEDULER = dict(
    num_train_timesteps=1000,
    shift=1.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=0.9,
    base_image_seq_len=256,
    max_image_seq_len=8192,
    shift_terminal=0.02,
    time_shift_type="exponential",
)
Z_IMAGE_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)
FLUX_VAE_SCALING, FLUX_VAE_SHIFT = 0.3611, 0.1159


def _qwen_image_components(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    text_config = dict(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=2 * TEXT_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=TEXT_HEADS,
        num_key_value_heads=TEXT_KV_HEADS,
        # Multimodal RoPE: sections (temporal, height, width) add up to half the head width.
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1000000.0},
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
    )
    vision_config = dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=TEXT_WIDTH, fullatt_block_indexes=[0])
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=LATENT_CHANNELS * 4,  # 2x2 packed latents, as the real 64
        out_channels=LATENT_CHANNELS,
        num_layers=2,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=3,
        joint_attention_dim=TEXT_WIDTH,
        guidance_embeds=False,
        axes_dims_rope=ROPE_AXES,
    )
    # Four levels with two temporal downsamplings: the real 8x spatial factor; mean/std stay the real defaults.
    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=LATENT_CHANNELS, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    return dict(transformer=transformer, vae=vae, text_encoder=text_encoder, scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER))


def _z_image_components(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=2 * TEXT_WIDTH,
        # Three layers: the pipeline reads hidden_states[-2], which must differ from the first layer's output.
        num_hidden_layers=3,
        num_attention_heads=TEXT_HEADS,
        num_key_value_heads=TEXT_KV_HEADS,
        head_dim=TEXT_HEAD_DIM,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = Qwen3Model(config).eval()
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=LATENT_CHANNELS,
        dim=3 * HEAD_DIM,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=3,
        n_kv_heads=3,
        cap_feat_dim=TEXT_WIDTH,
        axes_dims=list(ROPE_AXES),
        axes_lens=[1024, 512, 512],  # the real lengths: caption positions up to 1024
    )
    # The padding embeddings start at zero in diffusers; the trained model's are not, and zero ones would
    # hide a caller that pads where the stock pipeline does not.
    with torch.no_grad():
        transformer.x_pad_token.normal_(std=0.5)
        transformer.cap_pad_token.normal_(std=0.5)
    # FLUX.1's VAE layout (no quant convs) at toy width, four levels: the 8x spatial factor.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=FLUX_VAE_SCALING,
        shift_factor=FLUX_VAE_SHIFT,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    return dict(transformer=transformer, vae=vae, text_encoder=text_encoder, scheduler=FlowMatchEulerDiscreteScheduler(**Z_IMAGE_SCHEDULER))


def write_tiny_flow_model(family: str, out: str | Path, seed: int = 0) -> Path:
    """Write a tiny `family` model (qwen-image | z-image) into `out` and return the folder."""
    if family not in ("qwen-image", "z-image"):
        raise ValueError(f"unknown flow family {family!r}; choose qwen-image or z-image")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_qwen_tokenizer()
    if family == "qwen-image":
        pipe = QwenImagePipeline(tokenizer=tokenizer, **_qwen_image_components(tokenizer))
    else:
        pipe = ZImagePipeline(tokenizer=tokenizer, **_z_image_components(tokenizer))
    pipe.save_pretrained(out, safe_serialization=True)
    save_qwen_tokenizer(tokenizer, out / "tokenizer")
    return out
