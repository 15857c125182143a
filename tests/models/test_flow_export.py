"""ComfyUI export of the flow families' LoRA: the keys ComfyUI reads, and diffusers' stock pipeline
loads the file back to the same pixels as the diffusers-format LoRA (alpha / rank scaling kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coverforge.cli.main import main
from coverforge.config import LoraConfig
from coverforge.models.lora import LORA_WEIGHTS, add_text_lora, add_unet_lora, save_lora
from coverforge.models.loading import load_model

FAMILIES = ("qwen-image", "z-image")
PIPELINES = {"qwen-image": "QwenImagePipeline", "z-image": "ZImagePipeline"}


def _lora(folder: Path, model: Path, family: str, text: bool = False) -> Path:
    """A saved LoRA (rank 4, alpha 8: the 2x scale must survive) with adapter weights large enough
    that a lost or mis-scaled adapter shows in the pixels."""
    parts = load_model(str(model))
    cfg = LoraConfig(rank=4, alpha=8.0, unet_preset="attn+ff")
    add_unet_lora(parts.unet, cfg, family)
    if text:
        add_text_lora(parts.text_encoder, cfg, family=family)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in parts.unet.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return save_lora(folder, family, unet=parts.unet, text_encoder=parts.text_encoder if text else None,
                     metadata={"family": family, "base_model": str(model)})


def _pipeline(model: Path, family: str):
    import diffusers

    pipe = getattr(diffusers, PIPELINES[family]).from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _pixels(pipe, lora: Path | None = None) -> np.ndarray:
    """The image with this LoRA file loaded (then unloaded again), or with none."""
    if lora is not None:
        pipe.load_lora_weights(lora.parent, weight_name=lora.name)
    image = pipe("Book cover. Title: \"The Salt Road\".", height=64, width=64, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(3), output_type="np").images[0]
    if lora is not None:
        pipe.unload_lora_weights()
    return np.asarray(image, dtype=np.float64)


@pytest.mark.parametrize("family", FAMILIES)
def test_comfyui_export_keys_and_round_trip(flow_models, family, tmp_path, capsys):
    import diffusers

    lora = _lora(tmp_path / "lora", flow_models[family], family)
    out = tmp_path / "comfy.safetensors"
    # The flow families' default format is ComfyUI's.
    assert main(["export", str(lora), "--out", str(out)]) == 0
    assert "comfyui" in capsys.readouterr().out
    ours, comfy = load_file(lora), load_file(out)
    modules = {k[len("transformer."):].rsplit(".lora_", 1)[0] for k in ours}
    assert set(comfy) == {f"diffusion_model.{m}{s}" for m in modules for s in (".lora_A.weight", ".lora_B.weight", ".alpha")}
    assert all(comfy[f"diffusion_model.{m}.alpha"].item() == 8.0 for m in modules)
    assert all(torch.equal(comfy["diffusion_model." + k[len("transformer."):]], v) for k, v in ours.items())

    # diffusers' converter reads every module back, with alpha / rank folded into the weights.
    cls = getattr(diffusers, PIPELINES[family])
    converted = cls.lora_state_dict(str(out))
    assert set(converted) == set(ours)

    pipe = _pipeline(flow_models[family], family)
    base = _pixels(pipe)
    from_diffusers = _pixels(pipe, lora)
    from_comfy = _pixels(pipe, out)
    assert np.array_equal(_pixels(pipe), base)  # unloading leaves the base model: each image had only its own LoRA
    assert np.abs(from_diffusers - base).max() > 0.1, "the adapter must change the image for this test to mean anything"
    assert np.abs(from_comfy - from_diffusers).max() < 1e-4
    # The same file with alpha = rank (scale 1 instead of 2) draws another image: the check sees scaling.
    halved = {k: (torch.tensor(4.0) if k.endswith(".alpha") else v) for k, v in comfy.items()}
    save_file(halved, str(tmp_path / "halved.safetensors"))
    assert np.abs(_pixels(pipe, tmp_path / "halved.safetensors") - from_diffusers).max() > 0.01


def test_text_encoder_adapter_is_named_not_exported(flow_models, tmp_path, capsys):
    lora = _lora(tmp_path / "lora", flow_models["qwen-image"], "qwen-image", text=True)
    out = tmp_path / "comfy.safetensors"
    assert main(["export", str(lora), "--format", "comfyui", "--out", str(out)]) == 0
    assert "text encoder's adapter is not in" in capsys.readouterr().out
    assert all(k.startswith("diffusion_model.") for k in load_file(out))


def test_formats_that_do_not_apply_are_refused(flow_models, tmp_path, capsys):
    flow = _lora(tmp_path / "flow", flow_models["z-image"], "z-image")
    assert main(["export", str(flow), "--format", "kohya", "--out", str(tmp_path / "k.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "--format comfyui" in err and len(err.strip().splitlines()) == 1
    sd = tmp_path / "sd" / LORA_WEIGHTS
    sd.parent.mkdir()
    save_file({"unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": torch.zeros(4, 8)}, str(sd), metadata={"family": "sd15"})
    assert main(["export", str(sd), "--format", "comfyui", "--out", str(tmp_path / "c.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "--format kohya" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.safetensors").exists() and not (tmp_path / "k.safetensors").exists()


def test_alpha_comes_from_the_adapter_and_odd_adapters_are_refused(tmp_path):
    import json

    from coverforge.errors import CoverforgeError
    from coverforge.models.comfyui import lora_alpha

    meta = {"lora_adapter_metadata": json.dumps({"transformer.lora_alpha": 16, "transformer.r": 4})}
    assert lora_alpha(meta, tmp_path) == 16.0
    assert lora_alpha({"coverforge_config": "[lora]\nalpha = 2.0\n"}, tmp_path) == 2.0
    with pytest.raises(CoverforgeError, match="rsLoRA"):
        lora_alpha({"lora_adapter_metadata": json.dumps({"transformer.lora_alpha": 16, "transformer.use_rslora": True})}, tmp_path)
    with pytest.raises(CoverforgeError, match="no LoRA alpha"):
        lora_alpha({}, tmp_path)
