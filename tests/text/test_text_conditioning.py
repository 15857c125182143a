"""Long prompts: reach past token 300, batch and negative padding, SDXL pooled modes, the limit."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from coverforge.config import SampleConfig, TextConfig
from coverforge.models.loading import load_model
from coverforge.models.tokenizer import has_real_vocab
from coverforge.sampling.generate import Generator, generate
from coverforge.text.chunking import WINDOW, window_ids
from coverforge.text.conditioning import TextConditioner

pytestmark = pytest.mark.skipif(not has_real_vocab(), reason="needs the real CLIP vocabulary (OpenAI BPE file not found)")

SEED = Path("/work/shared/seeds/000_407b2d2cd16c0697.txt")


def seed_text() -> str:
    """The seed's three long prompts, joined: about 720 tokens of real book blurbs."""
    if not SEED.is_file():
        pytest.skip(f"{SEED} not found")
    found = [p.replace('\\"', '"') for p in re.findall(r'^- Prompt: "(.*)"\s*<br>', SEED.read_text(encoding="utf-8"), re.M)]
    return " ".join(p for p in found if len(p) > 600)


def prompt_400(tok) -> tuple[str, str, int]:
    """A ~400-token prompt and a copy with one word after token 300 changed; returns the token index."""
    words = seed_text().split()
    while len(tok(" ".join(words), add_special_tokens=False).input_ids) > 400:
        words.pop()
    for i in range(len(words)):
        before = len(tok(" ".join(words[:i]), add_special_tokens=False).input_ids)
        if before > 310 and words[i].isalpha() and len(tok(words[i], add_special_tokens=False).input_ids) == 1:
            changed = words[:i] + ["dragon" if words[i] != "dragon" else "castle"] + words[i + 1 :]
            return " ".join(words), " ".join(changed), before
    raise AssertionError("no single-token word after token 310")


@pytest.fixture(scope="module")
def sd15(tiny_models):
    return load_model(str(tiny_models["sd15"]))


@pytest.fixture(scope="module")
def sdxl(tiny_models):
    return load_model(str(tiny_models["sdxl"]))


def chunks_of(hidden: torch.Tensor) -> list[torch.Tensor]:
    return list(hidden.split(WINDOW, dim=0))


# --- reach -----------------------------------------------------------------------------------


def test_a_word_after_token_300_changes_conditioning_and_image(sd15):
    tok = sd15.tokenizer
    text, changed, position = prompt_400(tok)
    assert 300 < position < 400
    conditioner = TextConditioner.from_parts(sd15)
    with torch.no_grad():
        a, b = conditioner.encode([text, changed]).select(0), conditioner.encode([text, changed]).select(1)
    assert a.n_chunks >= 6  # 400 tokens cut at sentence ends
    differ = [not torch.equal(x, y) for x, y in zip(chunks_of(a.hidden), chunks_of(b.hidden))]
    # Only the chunk holding the word changes, and it is not the first: the text past 77 tokens is read.
    assert sum(differ) == 1 and not differ[0] and not differ[1]
    images = generate(Generator.from_parts(sd15), [text, changed], [0, 0], SampleConfig(steps=2, guidance_scale=5.0))
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))


def test_sdxl_reach_in_hidden_states_and_mean_pooled(sdxl):
    text, changed, _ = prompt_400(sdxl.tokenizer)
    with torch.no_grad():
        first = TextConditioner.from_parts(sdxl).encode([text, changed])
        mean = TextConditioner.from_parts(sdxl, TextConfig(pooled="mean")).encode([text, changed])
    assert not torch.equal(first.hidden[0], first.hidden[1])
    assert torch.equal(first.pooled[0], first.pooled[1])  # "first" reads only the first chunk
    assert not torch.equal(mean.pooled[0], mean.pooled[1])  # "mean" reads every chunk with text


# --- batch and negative padding --------------------------------------------------------------


def test_batch_padded_with_identical_empty_prompt_windows(sdxl):
    conditioner = TextConditioner.from_parts(sdxl)
    long = seed_text()[:1200]
    windows, real = conditioner.token_windows(["a red book", long, ""])
    n = real[1]
    assert n >= 3 and real[0] == 1 and real[2] == 1
    for spec, ids in zip(conditioner.specs, windows):
        assert ids.shape == (3, n, WINDOW)
        empty = torch.tensor(window_ids(spec.tokenizer, []))
        for row in (0, 2):
            for k in range(1, n):
                assert torch.equal(ids[row, k], empty)
        assert torch.equal(ids[2, 0], empty)  # the empty prompt is one empty window
    with torch.no_grad():
        cond = conditioner.encode(["a red book", long])
        empty_hidden = conditioner.encode([""]).hidden[0]
    assert cond.hidden.shape == (2, n * WINDOW, 32 + 48)
    pads = chunks_of(cond.hidden[0])[1:]
    for pad in pads:
        assert torch.allclose(pad, empty_hidden, atol=1e-5)
        assert torch.allclose(pad, pads[0], atol=1e-6)


def test_negative_is_padded_to_the_positive_chunk_count(sd15):
    conditioner = TextConditioner.from_parts(sd15)
    long = seed_text()[:1200]
    with torch.no_grad():
        cond, uncond = conditioner.encode_pair([long], ["blurry, low quality"])
        negative_alone = conditioner.encode(["blurry, low quality"]).hidden[0]
        empty = conditioner.encode([""]).hidden[0]
    assert cond.n_chunks == uncond.n_chunks >= 3
    assert uncond.hidden.shape == cond.hidden.shape
    neg_chunks = chunks_of(uncond.hidden[0])
    assert torch.allclose(neg_chunks[0], negative_alone, atol=1e-5)
    for pad in neg_chunks[1:]:
        assert torch.allclose(pad, empty, atol=1e-5)


def test_longer_negative_pads_the_positive(sd15):
    conditioner = TextConditioner.from_parts(sd15)
    long = seed_text()[:1200]
    with torch.no_grad():
        cond, uncond = conditioner.encode_pair(["a red book"], [long])
        short = conditioner.encode(["a red book"]).hidden[0]
    assert cond.n_chunks == uncond.n_chunks >= 3
    assert cond.hidden.shape == uncond.hidden.shape
    assert torch.allclose(chunks_of(cond.hidden[0])[0], short, atol=1e-5)


# --- SDXL pooled modes -----------------------------------------------------------------------


def _manual_chunk_pooled(parts, ids: torch.Tensor) -> torch.Tensor:
    """Encoder 2's projected pooled output for each window, one window at a time."""
    with torch.no_grad():
        return torch.cat([parts.text_encoder_2(w[None]).text_embeds for w in ids])


def test_pooled_modes_match_manual_computation(sdxl):
    prompts = ["a red book", seed_text()[:1200]]
    by_mode = {}
    for mode in ("first", "mean", "last"):
        with torch.no_grad():
            by_mode[mode] = TextConditioner.from_parts(sdxl, TextConfig(pooled=mode)).encode(prompts).pooled
    conditioner = TextConditioner.from_parts(sdxl)
    windows, real = conditioner.token_windows(prompts)
    assert real[0] == 1 and real[1] >= 3
    for i in range(2):
        per_chunk = _manual_chunk_pooled(sdxl, windows[1][i])
        k = real[i]
        assert torch.allclose(by_mode["first"][i], per_chunk[0], atol=1e-5)
        assert torch.allclose(by_mode["last"][i], per_chunk[k - 1], atol=1e-5)
        assert torch.allclose(by_mode["mean"][i], per_chunk[:k].mean(0), atol=1e-5)
    # The short prompt's mean ignores its padding chunks.
    padded_mean = _manual_chunk_pooled(sdxl, windows[1][0]).mean(0)
    assert not torch.allclose(by_mode["mean"][0], padded_mean, atol=1e-4)
    assert torch.allclose(by_mode["mean"][0], by_mode["first"][0], atol=1e-6)
    assert not torch.allclose(by_mode["mean"][1], by_mode["first"][1], atol=1e-4)


def test_sdxl_first_pooled_equals_stock_for_short_prompts(tiny_models, sdxl):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(vae=sdxl.vae, text_encoder=sdxl.text_encoder, text_encoder_2=sdxl.text_encoder_2,
                                     tokenizer=sdxl.tokenizer, tokenizer_2=sdxl.tokenizer_2, unet=sdxl.unet, scheduler=None)
    prompts = ["a red book", "Book cover. Title: \"The Salt Road\". A lighthouse at dusk."]
    with torch.no_grad():
        _, _, want_pooled, _ = pipe.encode_prompt(prompts, device="cpu", do_classifier_free_guidance=False)
        got = TextConditioner.from_parts(sdxl, TextConfig(pooled="first")).encode(prompts).pooled
    assert torch.equal(got, want_pooled)


# --- the limit flows from the config ---------------------------------------------------------


def test_max_tokens_from_config_drops_with_warning(sd15, caplog):
    text = seed_text()
    conditioner = TextConditioner.from_parts(sd15, TextConfig(max_tokens=150))
    with caplog.at_level(logging.WARNING, logger="coverforge.text.chunking"):
        windows, real = conditioner.token_windows([text])
    assert real == [2] and windows[0].shape == (1, 2, WINDOW)
    total = len(sd15.tokenizer(text, add_special_tokens=False).input_ids)
    # CLIP-L pads with EOS: each window holds BOS + its text tokens, then EOS/padding.
    kept = int((windows[0][0] != sd15.tokenizer.eos_token_id).sum()) - 2
    assert kept <= 150
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and str(total - kept) in messages[0]
