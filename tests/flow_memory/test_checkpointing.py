"""run.gradient_checkpointing on the flow transformers and their LLM text encoders (LoRA on both):
every block goes through the checkpoint function, and loss and adapter gradients are those of a run
without it. bf16 autocast (what train.mixed_precision = 'bf16' runs) stays close to fp32."""

from __future__ import annotations

import pytest
import torch

from coverforge.config import config_from_dict
from coverforge.models.families import family_of
from coverforge.models.loading import load_model
from coverforge.text.conditioners import make_conditioner
from coverforge.training.recipe import apply_recipe

FAMILIES = ("qwen-image", "z-image")
PROMPTS = ['Book cover. Title: "A red book". Genres: red.', "blue"]


def step(model, family, checkpointing: bool, autocast: bool = False):
    """Loss and adapter gradients of one flow-matching step, LoRA on transformer and text encoder."""
    cfg = config_from_dict({"model": {"path": str(model)}, "train": {"recipe": "lora", "train_text_encoder": True},
                            "lora": {"rank": 4, "alpha": 4, "unet_preset": "attn+ff"}, "run": {"gradient_checkpointing": checkpointing}})
    parts = load_model(str(model))
    trained = apply_recipe(parts, cfg)
    with torch.no_grad():  # non-zero B, so the text encoder's adapters shape the loss too
        for part in trained:
            for name, p in part.module.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    # Each checkpointed block goes through its owner's `_gradient_checkpointing_func` (diffusers
    # sets it on the transformer, transformers on each layer): count the blocks that do.
    calls = {"transformer": 0, "text": 0}
    owners = [("transformer", m) for m in [parts.unet]] + [("text", m) for m in parts.text_encoder.modules()]
    for key, owner in owners:
        func = owner.__dict__.get("_gradient_checkpointing_func")
        if func is not None:
            owner._gradient_checkpointing_func = lambda *a, func=func, key=key, **kw: (calls.__setitem__(key, calls[key] + 1), func(*a, **kw))[1]
    g = torch.Generator().manual_seed(0)
    latents, noise, sigmas = torch.randn(2, 16, 8, 8, generator=g), torch.randn(2, 16, 8, 8, generator=g), torch.tensor([0.3, 0.8])
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        cond = make_conditioner(family, [parts.tokenizer], [parts.text_encoder], cfg.text).encode(PROMPTS)
        noisy = (1 - sigmas.view(-1, 1, 1, 1)) * latents + sigmas.view(-1, 1, 1, 1) * noise
        pred = family_of(family).flow.predict(parts.unet, noisy, sigmas, cond.hidden, cond.mask)
    loss = (pred.float() - (noise - latents)).pow(2).mean()
    loss.backward()
    grads = {f"{part.name}.{n}": p.grad for part in trained for n, p in part.module.named_parameters() if p.requires_grad}
    return loss.item(), grads, calls


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpointing_recomputes_blocks_and_gives_the_same_loss_and_gradients(memory_models, family):
    loss, grads, calls = step(memory_models[family], family, checkpointing=False)
    loss_ckpt, grads_ckpt, calls_ckpt = step(memory_models[family], family, checkpointing=True)
    assert calls == {"transformer": 0, "text": 0}
    layers = {"qwen-image": (2, 2), "z-image": (2 + 1 + 1, 3)}[family]  # transformer blocks (+ noise, context refiners), LLM layers
    assert (calls_ckpt["transformer"], calls_ckpt["text"]) == layers
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    assert grads.keys() == grads_ckpt.keys()
    reached = [k for k, v in grads.items() if v is not None]
    assert any(k.startswith("text_encoder.") for k in reached) and any(k.startswith("unet.") for k in reached)
    for key in grads:
        if grads[key] is None:
            assert grads_ckpt[key] is None, key
        else:
            torch.testing.assert_close(grads_ckpt[key], grads[key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_autocast_step_stays_close_to_fp32(memory_models, family):
    loss, grads, _ = step(memory_models[family], family, checkpointing=False)
    loss_bf16, grads_bf16, _ = step(memory_models[family], family, checkpointing=True, autocast=True)
    assert loss_bf16 != loss and loss_bf16 == pytest.approx(loss, rel=0.05)  # it did run in bf16, and stays near
    assert all(g is None or (torch.isfinite(g).all() and g.dtype == torch.float32) for g in grads_bf16.values())  # fp32 adapters
