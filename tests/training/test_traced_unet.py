"""`run.trace_unet` (issue 18): the replayed trace computes bit for bit what the UNet (or the flow
transformer) computes, in the forward and the backward pass, across input shapes, text masks and
parameter updates; signatures are traced once they recur, at most MAX_TRACES; it is used only
where that holds."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from coverforge.config import LoraConfig, config_from_dict
from coverforge.errors import ConfigError, CoverforgeError
from coverforge.models.loading import load_model
from coverforge.models.lora import add_unet_lora
from coverforge.training import loop
from coverforge.training.switches import training_forward
from coverforge.models.families import family_of
from coverforge.training import traced_unet
from coverforge.training.traced_unet import FlowForward, TracedCall, UNetForward
from test_train_resume import assert_same_tensors, final_lora, metrics


def lora_unet(path, family):
    unet = load_model(path).unet
    unet.requires_grad_(False)
    add_unet_lora(unet, LoraConfig(rank=4, alpha=4, init="gaussian"), family)
    return unet


def inputs(family, batch, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 4, height, width, generator=g)
    timestep = torch.randint(0, 1000, (batch,), generator=g)
    hidden = torch.randn(batch, 77, 32 if family == "sd15" else 80, generator=g)  # the tiny models' widths
    added = None
    if family == "sdxl":
        added = {"text_embeds": torch.randn(batch, 40, generator=g), "time_ids": torch.rand(batch, 6, generator=g) * 64}
    return sample, timestep, hidden, added


def step(forward, unet, optimizer, args):
    """Prediction, then one AdamW step on its squared mean; returns the prediction and the gradients."""
    pred = forward(*args)
    pred.square().mean().backward()
    grads = [p.grad.clone() for p in unet.parameters() if p.requires_grad]
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return pred.detach(), grads


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_trace_computes_what_the_unet_computes_forward_and_backward(tiny_models, family):
    eager_unet, traced_unet = lora_unet(tiny_models[family], family), lora_unet(tiny_models[family], family)
    traced_unet.load_state_dict(eager_unet.state_dict())
    eager, traced = UNetForward(eager_unet), UNetForward(traced_unet, trace=True)
    opt_e = torch.optim.AdamW([p for p in eager_unet.parameters() if p.requires_grad], lr=1e-2)
    opt_t = torch.optim.AdamW([p for p in traced_unet.parameters() if p.requires_grad], lr=1e-2)
    # Two shapes (two buckets) in turn: one trace each (made the second time each comes), and each
    # sees the other's parameter updates.
    for i, (h, w) in enumerate([(8, 8), (8, 12), (8, 8), (8, 12), (8, 8), (8, 12)]):
        args = inputs(family, 2, h, w, seed=i)
        pred_e, grads_e = step(eager, eager_unet, opt_e, args)
        pred_t, grads_t = step(traced, traced_unet, opt_t, args)
        assert torch.equal(pred_t, pred_e), f"step {i}: predictions differ"
        assert all(torch.equal(a, b) for a, b in zip(grads_t, grads_e)), f"step {i}: gradients differ"
    assert len(traced.calls.traces) == 2
    assert grads_e and all(g.abs().sum() > 0 for g in grads_e)  # every adapter tensor was reached


def test_trace_passes_gradients_on_to_trained_text_embeddings(tiny_models):
    """LoRA on the text encoder: the prompt embeddings need their gradient from the UNet."""
    unet = lora_unet(tiny_models["sd15"], "sd15")
    sample, timestep, hidden, _ = inputs("sd15", 2, 8, 8, seed=5)
    grads = []
    traced = UNetForward(unet, trace=True)
    for forward in (UNetForward(unet), traced, traced):  # the trace is made on the second call
        h = hidden.clone().requires_grad_(True)
        forward(sample, timestep, h).square().mean().backward()
        grads.append(h.grad)
    assert len(traced.calls.traces) == 1
    assert grads[0].abs().sum() > 0 and torch.equal(grads[2], grads[0])


def config(tiny_models, dataset, **run):
    return config_from_dict({
        "model": {"path": str(tiny_models["sd15"])},
        "data": {"dataset": str(dataset), "resolution": 32, "buckets": False},
        "train": {"recipe": "lora", "batch_size": 4, "max_steps": 4, "lr_unet": 1e-3, "log_every": 1},
        "lora": {"rank": 4, "alpha": 4},
        "run": run,
    })


def test_training_with_the_trace_equals_training_without(tiny_models, colour_dataset, tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(TracedCall, "_trace", lambda self, *a, _orig=TracedCall._trace: made.append(1) or _orig(self, *a))
    loop.train(config(tiny_models, colour_dataset, trace_unet="auto"), tmp_path / "traced", progress=False)
    assert made == [1]  # one trace, replayed by every step
    loop.train(config(tiny_models, colour_dataset, trace_unet="off"), tmp_path / "eager", progress=False)
    assert made == [1]
    a, b = metrics(tmp_path / "traced"), metrics(tmp_path / "eager")
    assert [a[s]["loss"] for s in sorted(a)] == [b[s]["loss"] for s in sorted(b)]
    assert_same_tensors(final_lora(tmp_path / "traced"), final_lora(tmp_path / "eager"))


def decide(tiny_models, family="sd15", processes=1, autocast=None, device="cpu", **run):
    cfg = config_from_dict({"model": {"path": "unused"}, "data": {"dataset": "unused"}, "run": run})
    return training_forward(torch.nn.Identity(), cfg, family, processes, autocast, torch.device(device))


def test_auto_traces_only_where_the_trace_is_exact(tiny_models):
    for family in ("sd15", "sdxl", "qwen-image", "z-image"):
        assert decide(tiny_models, family=family).calls.trace
    assert isinstance(decide(tiny_models, family="qwen-image"), FlowForward)
    for eager in (decide(tiny_models, trace_unet="off"), decide(tiny_models, processes=2),
                  decide(tiny_models, gradient_checkpointing=True), decide(tiny_models, compile_unet=True),
                  decide(tiny_models, autocast=torch.bfloat16), decide(tiny_models, family="z-image", processes=2),
                  decide(tiny_models, device="cuda")):
        assert not eager.calls.trace
    assert decide(tiny_models, device="cuda", trace_unet="on").calls.trace  # measured on the CPU only


@pytest.mark.parametrize("setting, reason", [
    ({"processes": 2}, "more than one process"),
    ({"gradient_checkpointing": True}, "run.gradient_checkpointing"),
    ({"autocast": torch.float16}, "train.mixed_precision"),
])
def test_on_where_a_trace_cannot_apply_says_why(tiny_models, setting, reason):
    with pytest.raises(CoverforgeError, match=rf"run.trace_unet = 'on' cannot apply here: .*{reason}"):
        decide(tiny_models, trace_unet="on", **setting)


def test_trace_setting_is_checked():
    with pytest.raises(ConfigError, match="run.trace_unet"):
        config_from_dict({"model": {"path": "x"}, "data": {"dataset": "x"}, "run": {"trace_unet": "yes"}})


def test_a_dropped_trace_lets_the_model_go(tiny_models):
    """A trace holds the frozen weights as constants; in torch's global compilation unit it (and
    they) would live as long as the process, through every later run in it."""
    unet = lora_unet(tiny_models["sd15"], "sd15")
    frozen = weakref.ref(unet.conv_in.weight)
    traced = UNetForward(unet, trace=True)
    sample, timestep, hidden, _ = inputs("sd15", 2, 8, 8, seed=0)
    for _ in range(2):
        traced(sample, timestep, hidden).sum().backward()
    assert traced.calls.traces
    del traced, unet
    gc.collect()
    assert frozen() is None


def test_a_signature_is_traced_when_it_recurs_and_traces_are_capped(tiny_models, monkeypatch):
    """One that never recurs (Z-Image's per-batch prompt lengths) would cost a trace for nothing."""
    monkeypatch.setattr(traced_unet, "MAX_TRACES", 2)
    unet = lora_unet(tiny_models["sd15"], "sd15")
    traced = UNetForward(unet, trace=True)
    for h, w in [(8, 8), (8, 12), (8, 16)]:
        traced(*inputs("sd15", 1, h, w, seed=0)[:3])
    assert not traced.calls.traces
    for h, w in [(8, 8), (8, 12), (8, 16), (8, 16)]:
        traced(*inputs("sd15", 1, h, w, seed=0)[:3])
    assert len(traced.calls.traces) == 2  # the third shape recurs too, past the cap: eager


def flow_lora(path, family):
    transformer = load_model(path).unet
    transformer.requires_grad_(False)
    add_unet_lora(transformer, LoraConfig(rank=4, alpha=4, init="gaussian"), family)
    return transformer


def flow_inputs(transformer, family, lengths, seed, tokens=16, size=4):
    """Noisy latents, sigmas, padded prompt embeddings and their mask (one row per entry of `lengths`)."""
    g = torch.Generator().manual_seed(seed)
    channels = transformer.config.in_channels // (4 if family == "qwen-image" else 1)
    width = transformer.config.joint_attention_dim if family == "qwen-image" else transformer.config.cap_feat_dim
    mask = torch.tensor([[1] * n + [0] * (tokens - n) for n in lengths])
    hidden = torch.randn(len(lengths), tokens, width, generator=g) * mask[..., None]
    return torch.randn(len(lengths), channels, size, size, generator=g), torch.rand(len(lengths), generator=g), hidden, mask


@pytest.mark.parametrize("family", ["qwen-image", "z-image"])
def test_flow_trace_computes_what_the_transformer_computes(flow_models, family):
    eager_model, traced_model = flow_lora(flow_models[family], family), flow_lora(flow_models[family], family)
    traced_model.load_state_dict(eager_model.state_dict())
    flow = family_of(family).flow
    eager, traced = FlowForward(eager_model, flow), FlowForward(traced_model, flow, trace=True)
    opt_e = torch.optim.AdamW([p for p in eager_model.parameters() if p.requires_grad], lr=1e-2)
    opt_t = torch.optim.AdamW([p for p in traced_model.parameters() if p.requires_grad], lr=1e-2)
    # Prompts of every length, two patterns of lengths in turn, and then a third pattern: Qwen-Image
    # reads the mask as data, so its one partial-mask trace serves the third; Z-Image cuts each prompt
    # to its length in Python, so each pattern is a signature of its own.
    patterns = [(16, 16), (16, 7), (16, 16), (16, 7), (16, 16), (16, 7), (5, 9), (5, 9)]
    for i, lengths in enumerate(patterns):
        args = flow_inputs(eager_model, family, lengths, seed=i)
        pred_e, grads_e = step(eager, eager_model, opt_e, args)
        pred_t, grads_t = step(traced, traced_model, opt_t, args)
        assert torch.equal(pred_t, pred_e), f"step {i}: predictions differ"
        assert all(torch.equal(a, b) for a, b in zip(grads_t, grads_e)), f"step {i}: gradients differ"
    assert grads_e and all(g.abs().sum() > 0 for g in grads_e)
    assert len(traced.calls.traces) == (2 if family == "qwen-image" else 3)



def test_qwen_image_text_padding_changes_only_rounding(flow_models):
    """Training pads Qwen-Image's prompts to a multiple of 16 tokens (fewer shapes, fewer traces):
    the padded tokens are masked, so the prediction is the unpadded one up to rounding."""
    from coverforge.models.flow_model import pad_text

    transformer = flow_lora(flow_models["qwen-image"], "qwen-image")
    flow = family_of("qwen-image").flow
    noisy, sigmas, hidden, mask = flow_inputs(transformer, "qwen-image", (11, 6), seed=3, tokens=11)
    padded = pad_text(hidden, mask, flow.text_multiple)
    assert flow.text_multiple == 16 and padded[0].shape[1] == padded[1].shape[1] == 16
    with torch.no_grad():
        plain = flow.predict(transformer, noisy, sigmas, hidden, mask)
        torch.testing.assert_close(FlowForward(transformer, flow)(noisy, sigmas, hidden, mask), plain, rtol=1e-5, atol=1e-5)
