"""The shipped Qwen-Image / Z-Image LoRA configs load, validate and say what the README says, and
their LoRA targets exist in the real-size transformers (built on the meta device from the
published configs that benchmarks/flow_memory_estimate.py counts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from coverforge.config import load_config
from coverforge.models.families import family_of
from coverforge.models.lora import add_unet_lora
from coverforge.training.setup import _check_flow_settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"qwen-image": ("Qwen/Qwen-Image", 1024), "z-image": ("Tongyi-MAI/Z-Image", 512)}


def _estimate_module():
    spec = importlib.util.spec_from_file_location("flow_memory_estimate", ROOT / "benchmarks" / "flow_memory_estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", SHIPPED)
def test_shipped_flow_config_validates(family):
    path = ROOT / "configs" / f"{family}-lora-covers.toml"
    assert path.read_text().splitlines()[0] == f"# coverforge train configs/{family}-lora-covers.toml data.dataset=DATASET --out runs/{family}-lora"
    cfg = load_config(path, ["data.dataset=somewhere"])
    hub_id, tokens = SHIPPED[family]
    assert cfg.model.path == hub_id and "turbo" not in cfg.model.path.lower()  # LoRA on the distilled Turbo breaks it
    assert cfg.text.max_tokens == tokens == family_of(family).flow.text_limit
    assert (cfg.data.resolution, cfg.data.buckets) == (1024, True)
    assert (cfg.train.mixed_precision, cfg.run.gradient_checkpointing, cfg.run.cache) == ("bf16", True, True)
    assert (cfg.train.recipe, cfg.train.train_text_encoder) == ("lora", False)  # frozen encoder: cached, then off the GPU
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.train.lr_unet) == (4, 4.0, 1e-4)  # the diffusers peers' defaults
    assert cfg.sample.width % 16 == 0 and cfg.sample.height % 16 == 0  # both families draw on a 16-px grid
    _check_flow_settings(cfg, family)  # no DDPM-only setting that training would refuse


@pytest.mark.parametrize("family, params, adapted", [("qwen-image", 20.43e9, 60 * 4), ("z-image", 6.15e9, (30 + 2 + 2) * 4)])
def test_lora_targets_exist_in_the_real_transformer(family, params, adapted):
    """Published sizes: Qwen-Image's 20B (60 dual-stream blocks), Z-Image's 6.15B (30 layers + 2 + 2 refiners)."""
    import diffusers

    est = _estimate_module()
    config = est.QWEN_IMAGE_TRANSFORMER if family == "qwen-image" else est.Z_IMAGE_TRANSFORMER
    with torch.device("meta"):
        transformer = getattr(diffusers, family_of(family).classes["transformer"])(**config)
    assert sum(p.numel() for p in transformer.parameters()) == pytest.approx(params, rel=1e-3)
    cfg = load_config(ROOT / "configs" / f"{family}-lora-covers.toml", ["data.dataset=somewhere"])
    transformer.requires_grad_(False)
    add_unet_lora(transformer, cfg.lora, family)
    names = {n.rsplit(".lora_A", 1)[0] for n, p in transformer.named_parameters() if p.requires_grad and ".lora_A." in n}
    assert len(names) == adapted
    # The peers' targets: image-stream attention only in Qwen-Image's dual-stream blocks.
    assert not any("add_" in n or "to_add_out" in n for n in names)
