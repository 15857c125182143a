"""Exactness: for prompts of <= 75 tokens we are the stock diffusers pipeline, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coverforge.config import SampleConfig, TextConfig
from coverforge.models.loading import load_model
from coverforge.models.tokenizer import has_real_vocab
from coverforge.sampling.generate import Generator, generate
from coverforge.text.conditioning import TextConditioner

pytestmark = pytest.mark.skipif(not has_real_vocab(), reason="needs the real CLIP vocabulary (OpenAI BPE file not found)")

WORDS = ("Book cover . Title : \"The Salt Road\" . A lighthouse on black cliffs at dusk , storm clouds , "
         "oil painting , gold lettering , fantasy , adventure , sea , ships , maps").split()


def prompt_of(tok, n_tokens: int) -> str:
    """A natural-looking prompt of exactly n_tokens CLIP tokens."""
    words, i = [], 0
    while len(tok(" ".join(words), add_special_tokens=False).input_ids) < n_tokens:
        words.append(WORDS[i % len(WORDS)])
        i += 1
        if len(tok(" ".join(words), add_special_tokens=False).input_ids) > n_tokens:
            words[-1] = "sea"  # one token
    text = " ".join(words)
    assert len(tok(text, add_special_tokens=False).input_ids) == n_tokens
    return text


_cache: dict = {}


def stock(tiny_models, family):
    """The stock pipeline from the folder, and our parts loaded independently (cached per module)."""
    if family not in _cache:
        import diffusers

        cls = diffusers.StableDiffusionXLPipeline if family == "sdxl" else diffusers.StableDiffusionPipeline
        pipe = cls.from_pretrained(tiny_models[family])
        pipe.set_progress_bar_config(disable=True)
        _cache[family] = (pipe, load_model(str(tiny_models[family])))
    return _cache[family]


@pytest.fixture(scope="module", autouse=True)
def _clear_cache():
    yield
    _cache.clear()


@pytest.mark.parametrize("family", ["sd15", "sd2"])
def test_sd_encode_pair_equals_stock(tiny_models, family):
    pipe, parts = stock(tiny_models, family)
    prompts = [prompt_of(pipe.tokenizer, 75), "a red book", ""]
    negatives = ["blurry, low quality, text", "", prompt_of(pipe.tokenizer, 75)]
    with torch.no_grad():
        want, want_neg = pipe.encode_prompt(prompts, "cpu", 1, True, negative_prompt=negatives)
        cond, uncond = TextConditioner.from_parts(parts).encode_pair(prompts, negatives)
    assert cond.n_chunks == uncond.n_chunks == 1
    assert torch.equal(cond.hidden, want)
    assert torch.equal(uncond.hidden, want_neg)
    assert cond.pooled is None


def _stock_clip_skip(pipe, prompts, clip_skip):
    """diffusers 0.42.1's encode_prompt(clip_skip=k) recipe, written out: with transformers 5 the stock
    call itself dies on `text_encoder.text_model` (CLIPTextModel no longer nests a text_model)."""
    ids = pipe.tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out = pipe.text_encoder(ids, output_hidden_states=True)
    te = pipe.text_encoder
    return getattr(te, "text_model", te).final_layer_norm(out.hidden_states[-(clip_skip + 1)])


def test_sd15_clip_skip_equals_stock(tiny_models):
    pipe, parts = stock(tiny_models, "sd15")
    prompts = [prompt_of(pipe.tokenizer, 40), "a blue book"]
    with torch.no_grad():
        want = _stock_clip_skip(pipe, prompts, 1)
        plain = TextConditioner.from_parts(parts).encode(prompts)
        got = TextConditioner.from_parts(parts, TextConfig(clip_skip=1)).encode(prompts)
    assert torch.equal(got.hidden, want)
    assert not torch.equal(got.hidden, plain.hidden)


def test_clip_skip_reference_recipe_matches_stock_at_zero(tiny_models):
    # The written-out recipe is the stock one: at clip_skip=0 it must give encode_prompt's output.
    pipe, _ = stock(tiny_models, "sd15")
    prompts = [prompt_of(pipe.tokenizer, 40), "a blue book"]
    with torch.no_grad():
        want, _ = pipe.encode_prompt(prompts, "cpu", 1, False)
        assert torch.equal(_stock_clip_skip(pipe, prompts, 0), want)


def test_sdxl_encode_pair_equals_stock(tiny_models):
    pipe, parts = stock(tiny_models, "sdxl")
    prompts = [prompt_of(pipe.tokenizer, 75), "a red book"]
    negatives = ["blurry, low quality", prompt_of(pipe.tokenizer, 30)]
    conditioner = TextConditioner.from_parts(parts)
    with torch.no_grad():
        want, want_neg, want_pooled, want_neg_pooled = pipe.encode_prompt(prompts, device="cpu", num_images_per_prompt=1,
                                                                          do_classifier_free_guidance=True, negative_prompt=negatives)
        cond, uncond = conditioner.encode_pair(prompts, negatives, zero_empty_negative=True)
    assert cond.hidden.shape[-1] == 32 + 48  # both encoders, concatenated on features
    assert torch.equal(cond.hidden, want) and torch.equal(uncond.hidden, want_neg)
    assert torch.equal(cond.pooled, want_pooled) and torch.equal(uncond.pooled, want_neg_pooled)

    # force_zeros_for_empty_prompt: the stock pipeline zeroes a missing negative, we an empty one.
    with torch.no_grad():
        _, zero_neg, _, zero_neg_pooled = pipe.encode_prompt(prompts, device="cpu", do_classifier_free_guidance=True, negative_prompt=None)
        _, uncond = conditioner.encode_pair(prompts, ["", ""], zero_empty_negative=True)
        _, explicit_neg, _, explicit_neg_pooled = pipe.encode_prompt(prompts, device="cpu", do_classifier_free_guidance=True, negative_prompt=["", ""])
        _, encoded_empty = conditioner.encode_pair(prompts, ["", ""], zero_empty_negative=False)
    assert torch.equal(uncond.hidden, zero_neg) and torch.equal(uncond.pooled, zero_neg_pooled)
    assert torch.equal(encoded_empty.hidden, explicit_neg) and torch.equal(encoded_empty.pooled, explicit_neg_pooled)


def _stock_images(pipe, prompts, seeds, negative, steps, guidance):
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    return pipe(prompts, negative_prompt=negative, generator=generators, num_inference_steps=steps, guidance_scale=guidance,
                height=64, width=64).images


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_generate_gives_the_stock_pixels(tiny_models, family):
    pipe, parts = stock(tiny_models, family)
    prompts = [prompt_of(pipe.tokenizer, 75), "a red book"]
    seeds = [3, 11]
    negative = "blurry, low quality"
    want = _stock_images(pipe, prompts, seeds, [negative] * 2, steps=3, guidance=5.0)
    got = generate(Generator.from_parts(parts), prompts, seeds, SampleConfig(negative_prompt=negative, sampler="euler", steps=3, guidance_scale=5.0))
    assert [im.size for im in got] == [(64, 64)] * 2
    for a, b in zip(got, want):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(got[0]), np.asarray(got[1]))


def test_generate_sdxl_empty_negative_matches_stock_default(tiny_models):
    pipe, parts = stock(tiny_models, "sdxl")
    want = _stock_images(pipe, ["a red book"], [5], None, steps=2, guidance=7.0)
    got = generate(Generator.from_parts(parts), ["a red book"], [5], SampleConfig(negative_prompt="", steps=2, guidance_scale=7.0))
    assert np.array_equal(np.asarray(got[0]), np.asarray(want[0]))


def test_seed_reproduces_its_image_whatever_the_batch(tiny_models):
    _, parts = stock(tiny_models, "sd15")
    gen = Generator.from_parts(parts)
    alone = generate(gen, ["a red book"], [7], SampleConfig(steps=2))
    batch = generate(gen, ["a blue book", "a red book"], [1, 7], SampleConfig(steps=2))
    assert np.array_equal(np.asarray(alone[0]), np.asarray(batch[1]))
