"""The published-size models the GPU benchmarks build (benchmarks/small_models.py) have the published
sizes: the cost a GPU row measures is in the shapes, so a wrong config would measure another model."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import small_models  # noqa: E402


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_real_unets_have_the_published_parameter_counts():
    from diffusers import UNet2DConditionModel

    # On the meta device: no memory, no initialisation; the counts are the hub models' own.
    assert _count(small_models.real_sdxl_unet("meta")) == 2_567_463_684  # stable-diffusion-xl-base-1.0
    with torch.device("meta"):
        sd15 = UNet2DConditionModel.from_config(small_models.SD15_UNET)
    assert _count(sd15) == 859_520_964  # stable-diffusion-v1-5


def test_the_sd15_folder_is_written_in_the_stock_layout(tmp_path, monkeypatch):
    # The real sizes cost 4 GB; the same writer with small parts checks the layout both trainers load.
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    monkeypatch.setattr(small_models, "SD15_UNET", {**small_models.SD15_UNET, "block_out_channels": [32, 32, 64, 64],
                                                   "norm_num_groups": 8, "cross_attention_dim": 64})
    monkeypatch.setattr(small_models, "SD15_TEXT", (64, 1, 2, 128, "quick_gelu"))
    monkeypatch.setattr(small_models, "SDXL_VAE_WIDTHS", (32, 32, 32, 32))
    real_vae = AutoencoderKL

    def small_vae(**kw):
        return real_vae(**{**kw, "layers_per_block": 1})

    monkeypatch.setattr(small_models, "AutoencoderKL", small_vae)
    folder = small_models.write_real_sd15(tmp_path / "sd15")
    monkeypatch.undo()
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    assert list(pipe.unet.config.block_out_channels) == [32, 32, 64, 64]
    assert pipe.vae.config.scaling_factor == 0.18215
    assert pipe.text_encoder.config.hidden_size == 64 and pipe.safety_checker is None
    assert set(small_models.parameter_counts(folder)) == {"unet", "vae", "text_encoder"}
