"""A small but proportioned SDXL for benchmarks, and the published SDXL-base and SD 1.5 configs.

    .venv/bin/python benchmarks/small_models.py --out /tmp/small-sdxl   # writes it, prints sizes

The tiny test model (models/tiny.py) has two UNet levels of one layer each, so it says nothing
about where an SDXL spends its time. This one keeps SDXL's block structure and shrinks only the
widths (about 1/10): UNet DownBlock2D + 2 CrossAttnDownBlock2D with transformer depths 2 and 10
(the first level has no transformer, as in SDXL), layers_per_block 2, 64-channel attention heads,
`text_time` conditioning; two CLIP text encoders with 12 and 32 layers (SDXL's CLIP-L and
OpenCLIP bigG depths); the SDXL VAE's four blocks of two layers with mid-block attention.
Random weights: the cost is in the shapes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from coverforge.models.tiny import PIPELINE_CLASS, VAE_SCALING, _clip_config, _scheduler
from coverforge.models.tokenizer import build_clip_tokenizer, save_tokenizer

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json (the published values).
SDXL_BASE_UNET: dict = {
    "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
    "center_input_sample": False, "class_embed_type": None, "class_embeddings_concat": False, "conv_in_kernel": 3,
    "conv_out_kernel": 3, "cross_attention_dim": 2048, "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
    "dual_cross_attention": False, "encoder_hid_dim": None, "encoder_hid_dim_type": None, "flip_sin_to_cos": True,
    "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1, "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816, "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default", "sample_size": 128, "time_cond_proj_dim": None, "time_embedding_act_fn": None,
    "time_embedding_dim": None, "time_embedding_type": "positional", "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10], "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None, "use_linear_projection": True,
}
SDXL_TEXT_WIDTHS = (768, 1280)  # CLIP-L and OpenCLIP bigG: their concatenation is the cross-attention width
SDXL_POOLED_DIM = 1280

# The small model's widths. Text encoders keep SDXL's depth, heads of 32 channels, MLP 4x wide.
SMALL_UNET_WIDTHS = (32, 64, 128)
SMALL_TEXT = ((64, 12), (128, 32))  # (width, layers): CLIP-L-like, bigG-like
SMALL_TIME_EMBED_DIM = 32  # per time id (256 in SDXL, whose pooled width is 5x the small one's)
SMALL_VAE_WIDTHS = (16, 32, 64, 64)  # SDXL VAE: (128, 256, 512, 512)
SMALL_VAE_TILE = 512
"""VAE sample_size, which diffusers uses as the tile side when tiling is on. SDXL's is 1024; 512
lets the tiling benchmark at 1024-px covers tile on a CPU, where 2048-px covers take too long."""
HEAD_DIM = 64  # SDXL UNet attention: 64 channels per head at every level


def small_unet() -> UNet2DConditionModel:
    cross = sum(w for w, _ in SMALL_TEXT)
    pooled = SMALL_TEXT[1][0]
    config = {
        **SDXL_BASE_UNET,
        "block_out_channels": list(SMALL_UNET_WIDTHS),
        "attention_head_dim": [max(1, w // HEAD_DIM) for w in SMALL_UNET_WIDTHS],  # diffusers: head *count*
        "cross_attention_dim": cross,
        "addition_time_embed_dim": SMALL_TIME_EMBED_DIM,
        "projection_class_embeddings_input_dim": 6 * SMALL_TIME_EMBED_DIM + pooled,
        "norm_num_groups": 8,  # 32 groups of one channel at width 32 would be instance norm
        "sample_size": 16,
    }
    return UNet2DConditionModel.from_config(config)


def small_text_encoders(vocab: int, pad_eos: int) -> tuple[CLIPTextModel, CLIPTextModelWithProjection]:
    (w1, l1), (w2, l2) = SMALL_TEXT
    c1 = _clip_config(w1, l1, pad_eos, "quick_gelu", vocab)
    c2 = _clip_config(w2, l2, 0, "gelu", vocab, projection=w2)
    for c, w in ((c1, w1), (c2, w2)):
        c.num_attention_heads, c.intermediate_size = w // 32, 4 * w
    return CLIPTextModel(c1), CLIPTextModelWithProjection(c2)


def small_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=SMALL_VAE_WIDTHS, layers_per_block=2, latent_channels=4, norm_num_groups=8,
        sample_size=SMALL_VAE_TILE, scaling_factor=VAE_SCALING["sdxl"], force_upcast=True,
    )


def write_small_sdxl(out: str | Path, seed: int = 0) -> Path:
    """Write the small SDXL into `out` in the diffusers layout (same layout as models/tiny.py)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok_eos, tok_zero = build_clip_tokenizer(pad_token="<|endoftext|>"), build_clip_tokenizer(pad_token="!")
    te1, te2 = small_text_encoders(len(tok_eos), tok_eos.pad_token_id)
    components = {"text_encoder": te1, "text_encoder_2": te2, "unet": small_unet(), "vae": small_vae()}
    return _write_folder(out, components, (tok_eos, tok_zero))


def _write_folder(out: Path, components: dict, tokenizers: tuple, family: str = "sdxl") -> Path:
    """A model's parts, its CLIP tokenizer(s), its scheduler and model_index.json, in the diffusers layout."""
    index: dict = {"_class_name": PIPELINE_CLASS[family], "_diffusers_version": "0.42.1"}
    if family == "sdxl":
        index["force_zeros_for_empty_prompt"] = True
    else:  # as the published SD 1.5 folders without their safety checker
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
    for name, model in components.items():
        model.save_pretrained(out / name, safe_serialization=True)
        index[name] = ["transformers" if name.startswith("text") else "diffusers", type(model).__name__]
    for name, tok in zip(("tokenizer", "tokenizer_2"), tokenizers):
        save_tokenizer(tok, out / name)
        index[name] = ["transformers", "CLIPTokenizer"]
    _scheduler(family).save_pretrained(out / "scheduler")
    index["scheduler"] = ["diffusers", "EulerDiscreteScheduler"]
    (out / "model_index.json").write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    return out


# The published text encoders and VAE of stabilityai/stable-diffusion-xl-base-1.0:
# (width, layers, heads, MLP width, activation) of CLIP ViT-L/14 and OpenCLIP ViT-bigG/14.
SDXL_TEXT = ((768, 12, 12, 3072, "quick_gelu"), (1280, 32, 20, 5120, "gelu"))
SDXL_VAE_WIDTHS = (128, 256, 512, 512)


def write_real_sdxl(out: str | Path, device: str | torch.device = "cpu", seed: int = 0) -> Path:
    """SDXL-base at full size (UNet 2.57 B, text encoders 0.12 B + 0.69 B, VAE 0.08 B parameters) with
    random weights, in the diffusers layout and fp32 safetensors as the hub's default files: what
    both sides of a GPU benchmark load. Built on `device` (a GPU initialises 3.5 B weights in seconds)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok_eos, tok_zero = build_clip_tokenizer(pad_token="<|endoftext|>"), build_clip_tokenizer(pad_token="!")
    configs = [_published_clip_config(spec, pad, len(tok_eos), projection=spec[0] if spec[0] == SDXL_POOLED_DIM else 0)
               for spec, pad in zip(SDXL_TEXT, (tok_eos.pad_token_id, 0))]
    with torch.device(device):
        components = {
            "text_encoder": CLIPTextModel(configs[0]), "text_encoder_2": CLIPTextModelWithProjection(configs[1]),
            "unet": real_sdxl_unet(device), "vae": _published_vae(1024, VAE_SCALING["sdxl"]),
        }
    return _write_folder(out, components, (tok_eos, tok_zero))


def _published_clip_config(spec: tuple, pad_id: int, vocab: int, projection: int = 0):
    """A CLIP text config at a published (width, layers, heads, MLP width, activation)."""
    width, layers, heads, mlp, act = spec
    config = _clip_config(width, layers, pad_id, act, vocab, projection=projection)
    config.num_attention_heads, config.intermediate_size = heads, mlp
    return config


def _published_vae(sample_size: int, scaling_factor: float) -> AutoencoderKL:
    """The SD / SDXL VAE's published shape (the two differ in tile size and latent scaling only)."""
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=SDXL_VAE_WIDTHS, layers_per_block=2,
                         latent_channels=4, norm_num_groups=32, sample_size=sample_size, scaling_factor=scaling_factor,
                         force_upcast=True)


# stable-diffusion-v1-5, unet/config.json (the published values; the keys left out are diffusers' defaults).
SD15_UNET: dict = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False,
    "cross_attention_dim": 768, "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
SD15_TEXT = SDXL_TEXT[0]  # CLIP ViT-L/14's text tower, SDXL's first encoder


def write_real_sd15(out: str | Path, device: str | torch.device = "cpu", seed: int = 0) -> Path:
    """SD 1.5 at full size (UNet 0.86 B, CLIP-L 0.12 B, VAE 0.08 B parameters) with random weights, in
    the diffusers layout and fp32 safetensors: what both sides of the GPU benchmark's SD 1.5 row load."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = build_clip_tokenizer(pad_token="<|endoftext|>")
    with torch.device(device):
        components = {
            "text_encoder": CLIPTextModel(_published_clip_config(SD15_TEXT, tok.pad_token_id, len(tok))),
            "unet": UNet2DConditionModel.from_config(SD15_UNET), "vae": _published_vae(512, VAE_SCALING["sd15"]),
        }
    return _write_folder(out, components, (tok,), family="sd15")


def parameter_counts(folder: str | Path) -> dict[str, int]:
    """Parameters per component of a diffusers SDXL or SD 1.5 folder."""
    folder = Path(folder)
    loaders = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
               "text_encoder_2": CLIPTextModelWithProjection}
    return {name: sum(p.numel() for p in cls.from_pretrained(folder / name).parameters()) for name, cls in loaders.items()
            if (folder / name).is_dir()}


def real_sdxl_unet(device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> UNet2DConditionModel:
    """The SDXL-base UNet (2.57 B parameters) with random weights; on `meta` it costs no memory."""
    with torch.device(device):
        return UNet2DConditionModel.from_config(SDXL_BASE_UNET).to(dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to write the small SDXL into")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = write_small_sdxl(args.out, args.seed)
    counts = parameter_counts(folder)
    print(f"small SDXL written to {folder}")
    print("| component | parameters |\n|---|---|")
    for name, n in counts.items():
        print(f"| {name} | {n / 1e6:.2f} M |")
    print(f"| total | {sum(counts.values()) / 1e6:.2f} M |")


if __name__ == "__main__":
    main()
