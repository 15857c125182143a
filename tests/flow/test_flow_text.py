"""Flow families, text: the LLM conditioning equals the stock `encode_prompt`, batches equal single
prompts, long prompts are read to the family's limit and cut past it with one warning."""

from __future__ import annotations

import logging

import pytest
import torch

from coverforge.config import TextConfig
from coverforge.models.loading import load_model
from coverforge.text.conditioners import conditioner_from_parts
from flow_kit import FAMILIES, OTHER_PROMPT, PROMPT, long_prompt, stock_pipeline

LIMITS = {"qwen-image": 1024, "z-image": 512}


def conditioner(folder, max_tokens: int = 512):
    return conditioner_from_parts(load_model(str(folder)), TextConfig(max_tokens=max_tokens))


def stock_rows(pipe, family: str, prompts: list[str], max_sequence_length: int) -> list[torch.Tensor]:
    """The stock pipeline's embedding of each prompt, unpadded (L_i, D)."""
    with torch.no_grad():
        if family == "qwen-image":
            embeds, mask = pipe.encode_prompt(prompts, max_sequence_length=max_sequence_length)
            if mask is None:  # the stock pipeline drops an all-ones mask
                return list(embeds)
            return [e[m.bool()] for e, m in zip(embeds, mask)]
        embeds, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, max_sequence_length=max_sequence_length)
        return list(embeds)


def our_rows(cond) -> list[torch.Tensor]:
    return [h[m.bool()] for h, m in zip(cond.hidden, cond.mask)]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_short_prompt_encodes_bit_for_bit_as_the_stock_pipeline(flow_models, family):
    pipe = stock_pipeline(flow_models[family], family)
    ours = conditioner(flow_models[family])
    with torch.no_grad():
        cond = ours.encode([PROMPT])
    if family == "qwen-image":
        embeds, mask = pipe.encode_prompt(PROMPT)
        assert cond.hidden.shape == embeds.shape  # (1, L, D): the same length, nothing dropped or added
        assert torch.equal(cond.hidden, embeds)
        assert mask is None and bool(cond.mask.all())
    else:
        embeds, negative = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False)
        assert isinstance(embeds, list) and len(embeds) == 1 and negative == []
        assert cond.hidden.shape[1] == embeds[0].shape[0]
        assert torch.equal(cond.hidden[0], embeds[0])
    assert cond.hidden.abs().sum() > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_a_batch_of_different_lengths_equals_each_prompt_alone(flow_models, family):
    ours = conditioner(flow_models[family])
    prompts = [PROMPT, OTHER_PROMPT + " A detective follows a letter.", ""]
    with torch.no_grad():
        batch = ours.encode(prompts)
        alone = [ours.encode([p]) for p in prompts]
    lengths = [int(c.mask.sum()) for c in alone]
    assert len(set(lengths)) == 3  # the premise: three lengths, so the batch is padded
    assert batch.hidden.shape[1] == max(lengths)
    assert batch.mask.sum(1).tolist() == lengths
    for i, (row, single) in enumerate(zip(our_rows(batch), alone)):
        # Qwen-Image pads a batch to its longest prompt and masks the rest: a shorter prompt's attention
        # then runs over a longer sequence than alone, and SDPA's sums differ in the last bits (measured:
        # up to 3.6e-7 for the empty prompt; the longest prompt is bit for bit). Z-Image pads every prompt
        # to max_sequence_length whatever the batch, so it is the same computation.
        if family == "z-image":
            assert torch.equal(row, single.hidden[0]), i
        else:
            torch.testing.assert_close(row, single.hidden[0], rtol=1e-5, atol=1e-6)
        assert not batch.hidden[i, lengths[i]:].any()  # zero padding past the prompt
    # And the batch is what the stock pipeline gives the same batch.
    stock = stock_rows(stock_pipeline(flow_models[family], family), family, prompts, LIMITS[family])
    for row, theirs in zip(our_rows(batch), stock):
        assert torch.equal(row, theirs)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_prompt_past_the_family_limit_is_cut_there_with_one_warning(flow_models, family, caplog):
    limit = LIMITS[family]
    ours = conditioner(flow_models[family], max_tokens=4096)
    assert ours.limit == limit  # text.max_tokens above the family's limit: the family's limit
    prompt = long_prompt(ours.tokenizer, limit + 40)
    with caplog.at_level(logging.WARNING, logger="coverforge.text.llm_conditioning"), torch.no_grad():
        cond = ours.encode([prompt])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    n = ours.flow.tokenize(ours.tokenizer, [prompt], limit).lengths[0]
    assert n > limit and f"{n} tokens" in warnings[0] and f"last {n - limit}" in warnings[0] and f"{limit}-token" in warnings[0]
    assert cond.hidden.shape[1] == limit
    # Cut where the stock pipeline cuts at its own maximum.
    (theirs,) = stock_rows(stock_pipeline(flow_models[family], family), family, [prompt], limit)
    assert torch.equal(cond.hidden[0], theirs)


@pytest.mark.parametrize("family", FAMILIES)
def test_text_max_tokens_cuts_below_the_family_limit(flow_models, family, caplog):
    ours = conditioner(flow_models[family], max_tokens=64)
    prompt = long_prompt(ours.tokenizer, 120)
    with caplog.at_level(logging.WARNING, logger="coverforge.text.llm_conditioning"), torch.no_grad():
        cond = ours.encode([prompt, PROMPT])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "64-token limit (text.max_tokens" in warnings[0]  # the short prompt fits: no warning
    assert cond.hidden.shape[1] == 64 and int(cond.mask[0].sum()) == 64 and int(cond.mask[1].sum()) < 64
    (theirs,) = stock_rows(stock_pipeline(flow_models[family], family), family, [prompt], 64)
    assert torch.equal(our_rows(cond)[0], theirs)


def test_qwen_image_reads_an_800_token_prompt_whole_with_max_tokens_1024(flow_models, caplog):
    folder = flow_models["qwen-image"]
    ours = conditioner(folder, max_tokens=1024)
    prompt = long_prompt(ours.tokenizer, 800)
    n = ours.flow.tokenize(ours.tokenizer, [prompt], 1024).lengths[0]
    assert 800 <= n <= 1024
    with caplog.at_level(logging.WARNING, logger="coverforge.text.llm_conditioning"), torch.no_grad():
        cond = ours.encode([prompt])
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert cond.hidden.shape[1] == n > 512  # not cut at the 512 of CLIP's or Z-Image's limit
    embeds, _ = stock_pipeline(folder, "qwen-image").encode_prompt(prompt, max_sequence_length=1024)
    assert torch.equal(cond.hidden, embeds)
    # The default text.max_tokens (512) cuts the same prompt at 512, with the warning.
    with torch.no_grad():
        assert conditioner(folder).encode([prompt]).hidden.shape[1] == 512
