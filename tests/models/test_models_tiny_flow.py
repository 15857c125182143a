"""Tiny Qwen-Image and Z-Image models: byte-identical per seed, run by the stock pipelines with long prompts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from coverforge.cli.main import main
from coverforge.errors import CoverforgeError
from coverforge.models.bpe_tokenizer import SPECIAL_TOKENS, THINK_TOKENS
from coverforge.models.families import family_of
from coverforge.models.loading import detect_family, load_model
from coverforge.models.tiny import write_tiny_model

FAMILIES = ("qwen-image", "z-image")
PIPELINES = {"qwen-image": "QwenImagePipeline", "z-image": "ZImagePipeline"}
BLURB = (
    "A girl walks the old salt road across the desert to find the father who never came home; in a harbour "
    "town of glass and fog, a detective follows a letter written by a woman who died ten years ago. "
)


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def book_prompt(tokenizer, min_tokens: int, max_tokens: int) -> str:
    """A prepare-style book prompt whose blurb is repeated until it is `min_tokens`..`max_tokens` long."""
    prompt = 'Book cover. Title: "The Salt Road". Author: Mara Ellison. Genres: Fantasy, Adventure. '
    while len(tokenizer(prompt).input_ids) < min_tokens:
        prompt += BLURB
    assert len(tokenizer(prompt).input_ids) <= max_tokens  # the test's own premise
    return prompt


def load_pipeline(folder: Path, family: str):
    import diffusers

    pipe = getattr(diffusers, PIPELINES[family]).from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_byte_identical_other_seed_other_weights(flow_models, family, tmp_path):
    again = folder_digest(write_tiny_model(family, tmp_path / "again", seed=0))
    base = folder_digest(flow_models[family])
    assert again == base
    other = folder_digest(write_tiny_model(family, tmp_path / "other", seed=1))
    changed = {name for name in base if other[name] != base[name]}
    assert changed == {"text_encoder/model.safetensors", "transformer/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"}


def test_cli_writes_the_same_folder(flow_models, tmp_path, capsys):
    assert main(["tiny-model", "--family", "z-image", "--out", str(tmp_path / "z"), "--seed", "0"]) == 0
    assert "z-image" in capsys.readouterr().out
    assert folder_digest(tmp_path / "z") == folder_digest(flow_models["z-image"])


@pytest.mark.parametrize("family", FAMILIES)
def test_layout_matches_the_real_models(flow_models, family):
    folder = flow_models[family]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == PIPELINES[family]
    assert index["tokenizer"] == ["transformers", "Qwen2Tokenizer"]
    for name in ("transformer", "vae", "text_encoder"):
        assert list((folder / name).glob("*.safetensors")) and not list((folder / name).glob("*.bin"))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "chat_template.jinja"):
        assert (folder / "tokenizer" / name).is_file()
    pipe = load_pipeline(folder, family)
    assert pipe.vae_scale_factor == 8  # the real VAEs' spatial factor: image sides step by 16 px
    assert pipe.vae.config.get("latent_channels", pipe.vae.config.get("z_dim")) == 16
    text_width = pipe.text_encoder.config.get_text_config().hidden_size
    assert text_width == (pipe.transformer.config.joint_attention_dim if family == "qwen-image" else pipe.transformer.config.cap_feat_dim)
    if family == "qwen-image":
        vision_start = pipe.tokenizer.convert_tokens_to_ids("<|vision_start|>")
        assert pipe.text_encoder.config.vision_start_token_id == vision_start


def test_tokenizer_special_tokens_are_single_and_template_drop_is_exact(flow_models):
    from transformers import AutoTokenizer

    pipe = load_pipeline(flow_models["qwen-image"], "qwen-image")
    tok = AutoTokenizer.from_pretrained(flow_models["qwen-image"] / "tokenizer")
    assert type(tok).__name__ == "Qwen2Tokenizer"
    for token in SPECIAL_TOKENS + THINK_TOKENS:
        assert tok(token).input_ids == [tok.convert_tokens_to_ids(token)], token
        assert tok.convert_tokens_to_ids(token) != tok.unk_token_id
    # QwenImagePipeline drops the first 34 template tokens: they must be exactly the system turn and the
    # user header, so the prompt's own tokens follow, as with the real tokenizer.
    template, drop = pipe.prompt_template_encode, pipe.prompt_template_encode_start_idx
    prompt = 'Book cover. Title: "Glass Harbour". Author: Tomas Verne.'
    prompt_ids = tok(prompt).input_ids
    ids = tok(template.format(prompt)).input_ids
    assert len(tok(template.split("{}")[0]).input_ids) == drop == 34
    assert ids[drop : drop + len(prompt_ids)] == prompt_ids
    assert len(ids) > drop
    # Z-Image: Qwen3's chat turn with the generation prompt; no thinking block when thinking is enabled.
    chat = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert chat == f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    no_think = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert no_think == chat + "<think>\n\n</think>\n\n"


def test_qwen_image_reads_a_prompt_past_512_tokens(flow_models):
    pipe = load_pipeline(flow_models["qwen-image"], "qwen-image")
    prompt = book_prompt(pipe.tokenizer, 600, 1000)
    n_template = len(pipe.tokenizer(pipe.prompt_template_encode.format(prompt)).input_ids)
    embeds, mask = pipe.encode_prompt(prompt, max_sequence_length=1024)
    assert embeds.shape == (1, n_template - 34, pipe.transformer.config.joint_attention_dim)
    assert embeds.shape[1] > 512
    image = pipe(prompt, max_sequence_length=1024, height=32, width=32, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert image.shape == (32, 32, 3)
    assert np.isfinite(image).all() and image.std() > 0


def test_z_image_reads_a_prompt_up_to_512_tokens_with_guidance(flow_models):
    pipe = load_pipeline(flow_models["z-image"], "z-image")
    prompt = book_prompt(pipe.tokenizer, 400, 500)
    chat = pipe.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True, enable_thinking=True)
    embeds, negative = pipe.encode_prompt(prompt, do_classifier_free_guidance=True, max_sequence_length=512)
    assert embeds[0].shape == (len(pipe.tokenizer(chat).input_ids), pipe.transformer.config.cap_feat_dim)
    assert len(negative) == 1
    image = pipe(prompt, guidance_scale=3.0, height=32, width=32, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert image.shape == (32, 32, 3)
    assert np.isfinite(image).all() and image.std() > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_loading_recognises_the_family_and_loads_its_classes(flow_models, family):
    assert detect_family(flow_models[family]) == family
    parts = load_model(str(flow_models[family]))
    stock = family_of(family).pipeline_class().from_pretrained(flow_models[family])
    assert parts.family == family
    for ours, theirs in ((parts.unet, stock.transformer), (parts.vae, stock.vae), (parts.text_encoder, stock.text_encoder)):
        assert type(ours) is type(theirs)
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    with pytest.raises(CoverforgeError, match="model.family = 'sdxl'"):
        load_model(str(flow_models[family]), family="sdxl")


def test_generate_with_a_flow_model_writes_its_image(flow_models, tmp_path, capsys):
    code = main(["generate", "--model", str(flow_models["qwen-image"]), "--prompt", "a cover", "--width", "32", "--height", "48",
                 "--steps", "2", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    images = sorted((tmp_path / "out").glob("0*.png"))
    assert len(images) == 1 and Image.open(images[0]).size == (32, 48)


def test_unknown_transformer_model_is_named(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}))
    with pytest.raises(CoverforgeError, match="FluxPipeline model .FluxTransformer2DModel."):
        detect_family(tmp_path)
