"""`run.trace_unet` (issue 18): the replayed trace computes bit for bit what the UNet computes, in
the forward and the backward pass, across input shapes and parameter updates; it is used only
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
from coverforge.training.traced_unet import TracedUNet, eager_forward
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
    eager, traced = eager_forward(eager_unet), TracedUNet(traced_unet)
    opt_e = torch.optim.AdamW([p for p in eager_unet.parameters() if p.requires_grad], lr=1e-2)
    opt_t = torch.optim.AdamW([p for p in traced_unet.parameters() if p.requires_grad], lr=1e-2)
    # Two shapes (two buckets) in turn: one trace each, and each sees the other's parameter updates.
    for i, (h, w) in enumerate([(8, 8), (8, 12), (8, 8), (8, 12)]):
        args = inputs(family, 2, h, w, seed=i)
        pred_e, grads_e = step(eager, eager_unet, opt_e, args)
        pred_t, grads_t = step(traced, traced_unet, opt_t, args)
        assert torch.equal(pred_t, pred_e), f"step {i}: predictions differ"
        assert all(torch.equal(a, b) for a, b in zip(grads_t, grads_e)), f"step {i}: gradients differ"
    assert len(traced.traces) == 2
    assert grads_e and all(g.abs().sum() > 0 for g in grads_e)  # every adapter tensor was reached


def test_trace_passes_gradients_on_to_trained_text_embeddings(tiny_models):
    """LoRA on the text encoder: the prompt embeddings need their gradient from the UNet."""
    unet = lora_unet(tiny_models["sd15"], "sd15")
    sample, timestep, hidden, _ = inputs("sd15", 2, 8, 8, seed=5)
    grads = []
    for forward in (eager_forward(unet), TracedUNet(unet)):
        h = hidden.clone().requires_grad_(True)
        forward(sample, timestep, h).square().mean().backward()
        grads.append(h.grad)
    assert grads[0].abs().sum() > 0 and torch.equal(grads[1], grads[0])


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
    monkeypatch.setattr(TracedUNet, "_trace", lambda self, *a, _orig=TracedUNet._trace: made.append(1) or _orig(self, *a))
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
    assert isinstance(decide(tiny_models), TracedUNet)
    assert isinstance(decide(tiny_models, family="sdxl"), TracedUNet)
    for eager in (decide(tiny_models, trace_unet="off"), decide(tiny_models, processes=2),
                  decide(tiny_models, gradient_checkpointing=True), decide(tiny_models, compile_unet=True),
                  decide(tiny_models, autocast=torch.bfloat16), decide(tiny_models, family="qwen-image"),
                  decide(tiny_models, device="cuda")):
        assert not isinstance(eager, TracedUNet)
    assert isinstance(decide(tiny_models, device="cuda", trace_unet="on"), TracedUNet)  # measured on the CPU only


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
    traced = TracedUNet(unet)
    sample, timestep, hidden, _ = inputs("sd15", 2, 8, 8, seed=0)
    traced(sample, timestep, hidden).sum().backward()
    del traced, unet
    gc.collect()
    assert frozen() is None
