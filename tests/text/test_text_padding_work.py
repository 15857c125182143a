"""What a batch of long prompts costs: padding windows encoded once, token windows remembered.

The outputs must not change: every window is its own sequence, so skipping the repeated empty
windows may only change float rounding (batch-size-dependent kernels), never the values.
"""

from __future__ import annotations

import pytest
import torch

import coverforge.text.conditioning as conditioning
from coverforge.config import TextConfig
from coverforge.models.loading import load_model
from coverforge.models.tokenizer import has_real_vocab
from coverforge.text.chunking import WINDOW
from coverforge.text.conditioning import TextConditioner

pytestmark = pytest.mark.skipif(not has_real_vocab(), reason="needs the real CLIP vocabulary (OpenAI BPE file not found)")

WORDS = ("lighthouse keeper storm harbour letters daughter winter salt road village secret tide ledger "
         "fog lantern island promise betrayal journey orchard").split()


def prose(n_sentences: int, seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    sentences = []
    for _ in range(n_sentences):
        picks = torch.randint(len(WORDS), (9,), generator=g).tolist()
        sentences.append(" ".join(WORDS[i] for i in picks).capitalize() + ".")
    return " ".join(sentences)


@pytest.fixture(scope="module")
def sdxl(tiny_models):
    return load_model(str(tiny_models["sdxl"]))


def _windows_seen(conditioner: TextConditioner) -> list[list[int]]:
    """Per encoder, the batch sizes its forward received (a hook on each encoder)."""
    seen = [[] for _ in conditioner.specs]
    for i, spec in enumerate(conditioner.specs):
        spec.encoder.register_forward_pre_hook(lambda _m, args, kw, i=i: seen[i].append((args[0] if args else kw["input_ids"]).shape[0]),
                                               with_kwargs=True)
    return seen


def _full_batch_reference(conditioner: TextConditioner, prompts: list[str]):
    """Every (B x n) window through each encoder, as before padding was skipped."""
    windows, real = conditioner._windows(prompts)
    hiddens, pooled = [], None
    for spec, ids, counts in zip(conditioner.specs, windows, real):
        b, n, _ = ids.shape
        out = spec.encoder(ids.reshape(b * n, WINDOW), output_hidden_states=True)
        hiddens.append(out.hidden_states[spec.hidden_layer].reshape(b, n * WINDOW, -1))
        if spec.gives_pooled:
            pooled = conditioner._pool(out.text_embeds.reshape(b, n, -1), counts)
    return torch.cat(hiddens, dim=-1), pooled


@pytest.mark.parametrize("mode", ["first", "mean", "last"])
def test_padding_windows_are_encoded_once_with_the_same_result(tiny_models, mode):
    parts = load_model(str(tiny_models["sdxl"]))
    conditioner = TextConditioner.from_parts(parts, TextConfig(pooled=mode))
    prompts = [prose(30, 0), "a red book", prose(12, 1), ""]
    windows, real = conditioner.token_windows(prompts)
    n = windows[0].shape[1]
    assert n >= 4 and real[1] == real[3] == 1 and 1 < real[2] < n
    with torch.no_grad():
        want_hidden, want_pooled = _full_batch_reference(conditioner, prompts)
    seen = _windows_seen(conditioner)
    with torch.no_grad():
        got = conditioner.encode(prompts)
    # The text windows and one empty window, not B x n: here 4 x n would be encoded before.
    assert seen == [[sum(real) + 1]] * 2 and sum(real) + 1 < len(prompts) * n
    torch.testing.assert_close(got.hidden, want_hidden, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.pooled, want_pooled, rtol=1e-5, atol=1e-5)
    pads = got.hidden[1].split(WINDOW)[1:]
    assert all(torch.equal(p, pads[0]) for p in pads)  # the one empty window, laid out everywhere


def test_gradients_through_skipped_padding_equal_the_full_batch(tiny_models):
    # A trained text encoder: the shared empty window's gradient is the sum over the places it fills.
    parts = load_model(str(tiny_models["sdxl"]))
    conditioner = TextConditioner.from_parts(parts)
    prompts = [prose(20, 2), "a blue book", prose(8, 3)]
    weight = torch.randn(1, 2 * 77 * 8, 32 + 48, generator=torch.Generator().manual_seed(0))

    def grads(fn):
        for enc in parts.text_encoders:
            enc.zero_grad(set_to_none=True)
        hidden, pooled = fn()
        n = hidden.shape[1]
        (hidden * weight[:, :n]).sum().add(pooled.square().sum()).backward()
        return [p.grad.clone() for enc in parts.text_encoders for p in enc.parameters() if p.grad is not None]

    want = grads(lambda: _full_batch_reference(conditioner, prompts))
    got = grads(lambda: (lambda c: (c.hidden, c.pooled))(conditioner.encode(prompts)))
    assert len(got) == len(want) > 0
    # Summation order differs (one empty window's gradient summed over its places vs each place's
    # own); on an AVX-512 CPU one element of 3,696 landed 1.1e-5 off. A missing or doubled place
    # would be off by the window's whole gradient, orders of magnitude more.
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=5e-5)


def test_prompts_of_one_length_encode_as_one_full_batch(sdxl):
    conditioner = TextConditioner.from_parts(sdxl)
    seen = _windows_seen(conditioner)
    with torch.no_grad():
        conditioner.encode(["a red book", "a green book", ""])  # one window each: nothing to skip
    assert seen == [[3], [3]]


def test_remembered_tokens_skip_chunking_and_change_nothing(sdxl, monkeypatch):
    prompts = [prose(15, 5), "a red book", prose(6, 6)]
    plain = TextConditioner.from_parts(sdxl)
    with torch.no_grad():
        want = plain.encode(prompts)
    conditioner = TextConditioner.from_parts(sdxl)
    conditioner.remember_tokens(limit=2)
    calls = []
    real_chunk = conditioning.chunk_prompt
    monkeypatch.setattr(conditioning, "chunk_prompt", lambda tok, text, m: calls.append(text) or real_chunk(tok, text, m))
    with torch.no_grad():
        first = conditioner.encode(prompts)
        again = conditioner.encode(list(reversed(prompts)))
    per_encoder = len(conditioner.specs)
    assert calls.count(prompts[0]) == calls.count(prompts[1]) == per_encoder  # remembered after the first time
    assert calls.count(prompts[2]) == 2 * per_encoder  # past the limit: chunked each time, still right
    assert torch.equal(first.hidden, want.hidden) and torch.equal(first.pooled, want.pooled)
    assert torch.equal(again.hidden.flip(0), want.hidden) and torch.equal(again.pooled.flip(0), want.pooled)
