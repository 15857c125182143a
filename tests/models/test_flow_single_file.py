"""Flow families from single files: a transformer file (diffusers keys, Z-Image's original layout,
ComfyUI's `model.diffusion_model.` prefix) with model.config_folder, and the packed file
`save_single_file` writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from coverforge.errors import CoverforgeError
from coverforge.models.loading import load_model, save_single_file
from coverforge.models.tiny import write_tiny_model

FAMILIES = ("qwen-image", "z-image")


def _configs_only(folder: Path, out: Path) -> Path:
    """The model folder without its transformer weights, as a user pairs with a transformer file."""
    shutil.copytree(folder, out)
    for weights in (out / "transformer").glob("*.safetensors"):
        weights.unlink()
    return out


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _original_z_image(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' Z-Image names back to the original checkpoint's: the inverse of diffusers'
    convert_z_image_transformer_checkpoint_to_diffusers (fused qkv, attention.out, q/k_norm,
    final_layer / x_embedder without the patch-size key)."""
    renames = {".attention.to_out.0.": ".attention.out.", ".attention.norm_q.": ".attention.q_norm.",
               ".attention.norm_k.": ".attention.k_norm.", "all_final_layer.2-1.": "final_layer.", "all_x_embedder.2-1.": "x_embedder."}
    out = {}
    for key, value in state.items():
        if ".attention.to_k." in key or ".attention.to_v." in key:
            continue
        if ".attention.to_q.weight" in key:
            k, v = (state[key.replace("to_q", name)] for name in ("to_k", "to_v"))
            out[key.replace("to_q", "qkv")] = torch.cat([value, k, v])
            continue
        for new, old in renames.items():
            key = key.replace(new, old)
        out[key] = value
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_transformer_file_with_diffusers_keys(flow_models, family, tmp_path):
    ref = load_model(str(flow_models[family]))
    file = tmp_path / "transformer.safetensors"
    save_file({k: v.contiguous() for k, v in ref.unet.state_dict().items()}, str(file))
    parts = load_model(str(file), config_folder=str(_configs_only(flow_models[family], tmp_path / "configs")))
    assert parts.family == family and parts.source == str(file)
    assert type(parts.unet) is type(ref.unet) and _same(parts.unet, ref.unet)
    assert _same(parts.text_encoder, ref.text_encoder) and _same(parts.vae, ref.vae)


@pytest.mark.parametrize("prefix", ["", "model.diffusion_model."])
def test_z_image_transformer_in_the_original_layout(flow_models, prefix, tmp_path):
    from diffusers.loaders.single_file_utils import convert_z_image_transformer_checkpoint_to_diffusers

    ref = load_model(str(flow_models["z-image"]))
    state = {k: v.contiguous() for k, v in ref.unet.state_dict().items()}
    original = _original_z_image(state)
    assert any(".attention.qkv.weight" in k for k in original) and not any(".to_q." in k for k in original)
    # The test's own premise: diffusers' converter maps this layout back onto the diffusers names.
    back = convert_z_image_transformer_checkpoint_to_diffusers(dict(original))
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)

    file = tmp_path / "z_image.safetensors"
    save_file({prefix + k: v for k, v in original.items()}, str(file))
    parts = load_model(str(file), config_folder=str(_configs_only(flow_models["z-image"], tmp_path / "configs")))
    assert _same(parts.unet, ref.unet)


def test_qwen_image_transformer_with_comfyui_prefix(flow_models, tmp_path):
    ref = load_model(str(flow_models["qwen-image"]))
    file = tmp_path / "qwen_image.safetensors"
    save_file({"model.diffusion_model." + k: v.contiguous() for k, v in ref.unet.state_dict().items()}, str(file))
    assert _same(load_model(str(file), config_folder=str(flow_models["qwen-image"])).unet, ref.unet)


@pytest.mark.parametrize("family", FAMILIES)
def test_packed_single_file_round_trip(flow_models, family, tmp_path):
    ref = load_model(str(flow_models[family]))
    file = tmp_path / "packed.safetensors"
    save_single_file(ref, file)
    other = write_tiny_model(family, tmp_path / "other", seed=1)  # configs, with other weights everywhere
    parts = load_model(str(file), config_folder=str(other))
    assert all(_same(getattr(parts, n), getattr(ref, n)) for n in ("unet", "vae", "text_encoder"))
    assert not _same(load_model(str(other)).unet, ref.unet)


def test_incomplete_or_foreign_transformer_file_is_refused(flow_models, tmp_path):
    ref = load_model(str(flow_models["qwen-image"]))
    state = {k: v.contiguous() for k, v in ref.unet.state_dict().items()}
    missing = next(iter(state))
    save_file({k: v for k, v in state.items() if k != missing}, str(tmp_path / "part.safetensors"))
    with pytest.raises(CoverforgeError, match="weights are missing"):
        load_model(str(tmp_path / "part.safetensors"), config_folder=str(flow_models["qwen-image"]))
    # A Qwen-Image transformer with Z-Image's configs.
    save_file(state, str(tmp_path / "qwen.safetensors"))
    with pytest.raises(CoverforgeError, match="z-image transformer"):
        load_model(str(tmp_path / "qwen.safetensors"), config_folder=str(flow_models["z-image"]))
