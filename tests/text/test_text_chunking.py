"""Chunk layout on the seed's three long book prompts, with the real CLIP tokenizer."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pytest

from coverforge.models.tokenizer import has_real_vocab
from coverforge.text.chunking import CHUNK_TOKENS, WINDOW, chunk_prompt, window_ids

pytestmark = pytest.mark.skipif(not has_real_vocab(), reason="needs the real CLIP vocabulary (OpenAI BPE file not found)")

SEED = Path("/work/shared/seeds/000_407b2d2cd16c0697.txt")
FILLER = "river stone cloud lamp forest window garden silver morning candle".split()  # one token each


def long_seed_prompts() -> list[str]:
    if not SEED.is_file():
        pytest.skip(f"{SEED} not found")
    found = re.findall(r'^- Prompt: "(.*)"\s*<br>', SEED.read_text(encoding="utf-8"), re.M)
    prompts = [p.replace('\\"', '"') for p in found]
    long = [p for p in prompts if len(p) > 600]
    assert len(long) == 3
    return long


@pytest.fixture(scope="module", params=["sd15", "sdxl-2"])
def tokenizer(request, tiny_models):
    """CLIP-L (EOS padding) and OpenCLIP (pad id 0, SDXL's second tokenizer)."""
    from transformers import CLIPTokenizer

    folder = tiny_models["sd15"] / "tokenizer" if request.param == "sd15" else tiny_models["sdxl"] / "tokenizer_2"
    return CLIPTokenizer.from_pretrained(folder)


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False, verbose=False).input_ids


def filler(n: int) -> str:
    return " ".join(FILLER[i % len(FILLER)] for i in range(n))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_seed_prompt_layout(tokenizer, which, caplog):
    text = long_seed_prompts()[which]
    ids = ids_of(tokenizer, text)
    assert 200 < len(ids) < 512
    with caplog.at_level(logging.WARNING):
        chunked = chunk_prompt(tokenizer, text)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    # Nothing lost below the limit; the chunk count is what the token count implies.
    assert chunked.dropped_tokens == 0
    assert [t for c in chunked.chunks for t in c] == ids
    assert len(chunked.chunks) == math.ceil(len(ids) / CHUNK_TOKENS)
    assert all(0 < len(c) <= CHUNK_TOKENS for c in chunked.chunks)

    # Every window: BOS, the chunk, EOS, then only padding.
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    for chunk in chunked.chunks:
        window = window_ids(tokenizer, chunk)
        assert len(window) == WINDOW
        assert window[0] == bos
        assert window[1 : 1 + len(chunk)] == chunk
        assert window[1 + len(chunk)] == eos
        assert set(window[2 + len(chunk) :]) <= {pad}
        assert bos not in chunk and eos not in chunk

    # No word split: every chunk starts where a whitespace-separated word starts ...
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True).offset_mapping
    start = 0
    for chunk in chunked.chunks:
        char = offsets[start][0]
        assert char == 0 or text[char - 1].isspace(), f"chunk starts inside a word: {text[max(0, char - 20):char + 20]!r}"
        start += len(chunk)
    # ... and the decoded chunks, word by word, are the decoded text.
    chunk_words = [w for c in chunked.chunks for w in tokenizer.decode(c).split()]
    assert chunk_words == tokenizer.decode(ids).split()


def test_seed_prompts_break_after_sentences(tokenizer):
    # The prompts are full of " . " sentence ends: each chunk but the last should end on one.
    for text in long_seed_prompts():
        chunks = chunk_prompt(tokenizer, text).chunks
        endings = [tokenizer.decode(c).split()[-1] for c in chunks[:-1]]
        assert sum(e in ".!?" for e in endings) >= len(endings) - 1, endings


def test_chunk_count_is_minimal_for_plain_words(tokenizer):
    text = filler(300)
    chunked = chunk_prompt(tokenizer, text)
    assert [len(c) for c in chunked.chunks] == [75, 75, 75, 75]
    chunked = chunk_prompt(tokenizer, filler(76))
    assert len(chunked.chunks) == 2


def test_quoted_title_is_not_split_when_it_fits(tokenizer):
    # A naive cut at 75 tokens lands inside the title, and the comma inside the quotes is the
    # cheapest phrase break on offer: only the quote rule keeps the title whole.
    title = '"love, war and the tree of wishes"'
    text = f"{filler(68)} {title} {filler(40)}"
    chunks = chunk_prompt(tokenizer, text).chunks
    assert len(chunks) == 2
    holding = [c for c in chunks if "love , war and the tree of wishes" in tokenizer.decode(c)]
    assert len(holding) == 1


def test_prefers_sentence_end_over_word_break(tokenizer):
    text = f"{filler(50)}. {filler(60)}"
    first, second = chunk_prompt(tokenizer, text).chunks
    assert tokenizer.decode(first).split()[-1] == "."
    assert len(second) == 60


def test_tokens_past_the_limit_are_dropped_with_a_warning(tokenizer, caplog):
    text = long_seed_prompts()[0]
    ids = ids_of(tokenizer, text)
    with caplog.at_level(logging.WARNING, logger="coverforge.text.chunking"):
        chunked = chunk_prompt(tokenizer, text, max_tokens=100)
    kept = [t for c in chunked.chunks for t in c]
    assert 90 < len(kept) <= 100
    assert kept == ids[: len(kept)]
    assert chunked.dropped_tokens == len(ids) - len(kept)
    assert len(chunked.chunks) == 2
    # Cut on a word boundary: the kept text decodes to whole words of the prompt.
    assert tokenizer.decode(kept).split() == tokenizer.decode(ids).split()[: len(tokenizer.decode(kept).split())]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(chunked.dropped_tokens) in warnings[0] and str(len(ids)) in warnings[0]


def test_default_limit_is_512_tokens(tokenizer, caplog):
    text = " ".join(long_seed_prompts())
    ids = ids_of(tokenizer, text)
    assert len(ids) > 512
    with caplog.at_level(logging.WARNING, logger="coverforge.text.chunking"):
        chunked = chunk_prompt(tokenizer, text)
    assert 500 < chunked.n_tokens <= 512
    assert chunked.dropped_tokens == len(ids) - chunked.n_tokens > 0
    assert any(str(chunked.dropped_tokens) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_empty_prompt_is_one_empty_window(tokenizer):
    chunked = chunk_prompt(tokenizer, "")
    assert chunked.chunks == [[]] and chunked.dropped_tokens == 0
    window = window_ids(tokenizer, [])
    assert window[:2] == [tokenizer.bos_token_id, tokenizer.eos_token_id]
    assert window[2:] == [tokenizer.pad_token_id] * (WINDOW - 2)


def test_short_prompt_window_equals_the_tokenizers_padded_ids(tokenizer):
    # What the stock pipelines feed CLIP: padding="max_length", max_length=77.
    text = "Book cover. Title: \"The Salt Road\". A lighthouse at dusk, oil painting."
    (chunk,) = chunk_prompt(tokenizer, text).chunks
    stock = tokenizer(text, padding="max_length", max_length=WINDOW, truncation=True).input_ids
    assert window_ids(tokenizer, chunk) == stock
