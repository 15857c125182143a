"""Tiny models: the stock diffusers pipelines load and run them; shapes mimic the real families."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from coverforge.models.tiny import write_tiny_model
from coverforge.models.tokenizer import has_real_vocab

PIPELINES = {"sd15": "StableDiffusionPipeline", "sd2": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_stock_pipeline_loads_and_generates_64px(tiny_models, family):
    import diffusers

    cls = getattr(diffusers, PIPELINES[family])
    pipe = cls.from_pretrained(tiny_models[family])
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe).__name__ == PIPELINES[family]
    out = pipe("a photo of a cat", num_inference_steps=2, guidance_scale=5.0, generator=torch.Generator().manual_seed(0), output_type="np")
    image = out.images[0]
    assert image.shape == (64, 64, 3)  # native size: unet sample 8 x VAE factor 8
    assert np.isfinite(image).all() and image.std() > 0


def test_layout_and_model_index(tiny_models):
    for family, folder in tiny_models.items():
        index = json.loads((folder / "model_index.json").read_text())
        assert index["_class_name"] == PIPELINES[family]
        expected = {"unet", "vae", "text_encoder", "tokenizer", "scheduler"} | ({"text_encoder_2", "tokenizer_2"} if family == "sdxl" else set())
        for name in expected:
            assert (folder / name).is_dir(), f"{family}: {name}/ missing"
            assert name in index
        for name in ("unet", "vae", "text_encoder") + (("text_encoder_2",) if family == "sdxl" else ()):
            assert list((folder / name).glob("*.safetensors")), f"{family}: {name} has no safetensors weights"
            assert not list((folder / name).glob("*.bin"))


def test_same_seed_gives_byte_identical_folder(tiny_models, tmp_path):
    again = write_tiny_model("sdxl", tmp_path / "sdxl-again", seed=0)
    assert folder_digest(again) == folder_digest(tiny_models["sdxl"])


def test_different_seed_gives_different_weights(tiny_models, tmp_path):
    other = folder_digest(write_tiny_model("sd15", tmp_path / "sd15-seed1", seed=1))
    base = folder_digest(tiny_models["sd15"])
    assert other["unet/diffusion_pytorch_model.safetensors"] != base["unet/diffusion_pytorch_model.safetensors"]
    assert other["unet/config.json"] == base["unet/config.json"]


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sd3"):
        write_tiny_model("sd3", tmp_path / "x")


def _config(folder: Path, name: str, file: str = "config.json") -> dict:
    return json.loads((folder / name / file).read_text())


def test_sd2_has_v_prediction_and_pad_id_zero(tiny_models):
    from transformers import CLIPTokenizer

    folder = tiny_models["sd2"]
    assert _config(folder, "scheduler", "scheduler_config.json")["prediction_type"] == "v_prediction"
    te = _config(folder, "text_encoder")
    assert te["pad_token_id"] == 0 and te["hidden_act"] == "gelu"
    tok = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert tok.pad_token_id == 0
    assert tok("cat", padding="max_length", max_length=77).input_ids[-1] == 0
    # SD 1.5 by contrast: epsilon, EOS padding, quick_gelu.
    assert _config(tiny_models["sd15"], "scheduler", "scheduler_config.json")["prediction_type"] == "epsilon"
    sd15_tok = CLIPTokenizer.from_pretrained(tiny_models["sd15"] / "tokenizer")
    assert sd15_tok.pad_token_id == sd15_tok.eos_token_id != 0
    assert _config(tiny_models["sd15"], "text_encoder")["hidden_act"] == "quick_gelu"


def test_sdxl_two_encoders_text_time_and_pooled_projection(tiny_models):
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    folder = tiny_models["sdxl"]
    te1, te2, unet = _config(folder, "text_encoder"), _config(folder, "text_encoder_2"), _config(folder, "unet")
    assert te1["hidden_size"] != te2["hidden_size"]
    assert unet["cross_attention_dim"] == te1["hidden_size"] + te2["hidden_size"]
    assert unet["addition_embed_type"] == "text_time"
    assert te2["architectures"] == ["CLIPTextModelWithProjection"]
    # Six time ids of addition_time_embed_dim each, plus the pooled projection of encoder 2.
    assert unet["projection_class_embeddings_input_dim"] == 6 * unet["addition_time_embed_dim"] + te2["projection_dim"]
    model = CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder_2")
    tok = CLIPTokenizer.from_pretrained(folder / "tokenizer_2")
    ids = tok("a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        assert model(ids).text_embeds.shape == (1, te2["projection_dim"])
    assert CLIPTokenizer.from_pretrained(folder / "tokenizer_2").pad_token_id == 0
    assert json.loads((folder / "model_index.json").read_text())["force_zeros_for_empty_prompt"] is True


@pytest.mark.parametrize("family,scaling", [("sd15", 0.18215), ("sd2", 0.18215), ("sdxl", 0.13025)])
def test_vae_downsamples_8x_with_real_scaling(tiny_models, family, scaling):
    from diffusers import AutoencoderKL

    cfg = _config(tiny_models[family], "vae")
    assert cfg["scaling_factor"] == scaling
    vae = AutoencoderKL.from_pretrained(tiny_models[family] / "vae")
    with torch.no_grad():
        latent = vae.encode(torch.zeros(1, 3, 64, 48)).latent_dist.mean
    assert latent.shape == (1, 4, 8, 6)


def test_tokenizer_folder_has_vocab_and_merges(tiny_models):
    from transformers import CLIPTokenizer

    for name in ("tokenizer", "tokenizer_2"):
        folder = tiny_models["sdxl"] / name
        assert (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        tok = CLIPTokenizer.from_pretrained(folder)
        assert len(vocab) == len(tok)
        # A tokenizer built from vocab.json + merges.txt alone (what older loaders read) agrees with tokenizer.json.
        from_files = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), pad_token=tok.pad_token)
        text = "a photo of a lighthouse on the cliffs, mistletoe"
        assert from_files(text).input_ids == tok(text).input_ids


def test_tokenizer_loads_without_tokenizer_json(tiny_models, tmp_path):
    import shutil

    from transformers import CLIPTokenizer

    folder = shutil.copytree(tiny_models["sd15"] / "tokenizer", tmp_path / "tokenizer")
    (folder / "tokenizer.json").unlink()
    text = "a photo of a lighthouse on the cliffs, mistletoe"
    assert CLIPTokenizer.from_pretrained(folder)(text).input_ids == CLIPTokenizer.from_pretrained(tiny_models["sd15"] / "tokenizer")(text).input_ids


@pytest.mark.skipif(not has_real_vocab(), reason="OpenAI CLIP BPE file not found (run scripts/setup.sh or set COVERFORGE_CLIP_BPE)")
def test_real_clip_vocabulary(tiny_models):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_models["sd15"] / "tokenizer")
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
