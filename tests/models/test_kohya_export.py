"""kohya-format export: keys as kohya/A1111/ComfyUI name them, and diffusers loads it back to the same images."""

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from coverforge.cli.main import main
from coverforge.config import SampleConfig, config_from_dict
from coverforge.sampling.from_run import load_model_generator, load_run_generator
from coverforge.sampling.generate import generate
from coverforge.training.loop import train


def _trained_run(tmp_path, tiny_models, colour_dataset, family):
    cfg = config_from_dict({
        "model": {"path": str(tiny_models[family])}, "data": {"dataset": str(colour_dataset), "resolution": 64},
        "train": {"recipe": "lora", "max_steps": 2, "batch_size": 2, "train_text_encoder": True,
                  "train_text_encoder_2": family == "sdxl"},
        "lora": {"rank": 4, "alpha": 8},
    })
    run = tmp_path / f"run-{family}"
    train(cfg, run, progress=False)
    # Two steps barely move LoRA's zero-initialised B; give every adapter weight a visible size so
    # the comparison below can tell a lost or mis-scaled adapter from a faithful one.
    path = run / "final" / "lora" / "pytorch_lora_weights.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in load_file(path).items()}
    save_file(state, str(path), metadata=meta)
    return run


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_kohya_export_round_trip(tmp_path, tiny_models, colour_dataset, family):
    run = _trained_run(tmp_path, tiny_models, colour_dataset, family)
    out = tmp_path / "kohya.safetensors"
    assert main(["export", str(run), "--format", "kohya", "--out", str(out)]) == 0
    keys = list(load_file(out))
    te = "lora_te1_" if family == "sdxl" else "lora_te_"
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys)
    assert any(k.startswith(te + "text_model_encoder_layers_0_") for k in keys)
    assert all(k.startswith(("lora_unet_", "lora_te")) for k in keys)
    assert (family == "sdxl") == any(k.startswith("lora_te2_") for k in keys)
    assert all(load_file(out)[k].item() == 8.0 for k in keys if k.endswith(".alpha"))

    prompt, seeds = ["Book cover. Genres: red."], [3]
    ours = np.asarray(generate(load_run_generator(run)[0], prompt, seeds, SampleConfig(steps=3))[0]).astype(int)
    kohya = np.asarray(generate(load_model_generator(str(tiny_models[family]), lora=str(out)), prompt, seeds, SampleConfig(steps=3))[0]).astype(int)
    base = np.asarray(generate(load_model_generator(str(tiny_models[family])), prompt, seeds, SampleConfig(steps=3))[0]).astype(int)
    assert np.abs(ours - base).max() > 20, "the adapter must change the image for this test to mean anything"
    assert np.abs(ours - kohya).max() <= 2  # same weights; only float rounding of the alpha/rank scale differs


def test_export_refuses_a_folder_without_lora(tmp_path):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 2


def _real_layout_sdxl_unet():
    """SDXL's block structure (three levels, two layers a block, attention on the lower two) at toy widths."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 16, 32), layers_per_block=2, norm_num_groups=8, cross_attention_dim=16,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=(1, 1, 2),
        attention_head_dim=(2, 4, 8), use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=40,
    )


@pytest.mark.parametrize("layout", ["tiny", "sdxl"])
def test_sgm_names_match_the_original_unet(layout, tiny_models):
    """Every diffusers parameter renamed to the original UNet's name, then converted back by
    diffusers' own converter from the original layout, lands on itself (issue 17)."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import LDM_UNET_KEY, convert_ldm_unet_checkpoint

    from coverforge.models.sgm_names import sgm_module_name, unet_layout

    unet = UNet2DConditionModel.from_pretrained(tiny_models["sdxl"] / "unet") if layout == "tiny" else _real_layout_sdxl_unet()
    ours = unet.state_dict()
    original = {LDM_UNET_KEY + sgm_module_name(k, *unet_layout(dict(unet.config))): v for k, v in ours.items()}
    assert any(".input_blocks.4.1.transformer_blocks.0.attn1.to_q." in k for k in original) == (layout == "sdxl")
    back = convert_ldm_unet_checkpoint(original, dict(unet.config))
    assert set(back) == set(ours)
    assert all(torch.equal(back[k], ours[k]) for k in ours)


def test_sdxl_kohya_keys_use_the_original_block_names():
    from coverforge.models.kohya import to_kohya

    state = {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 8),
             "unet.mid_block.attentions.0.proj_in.lora_A.weight": torch.zeros(4, 8),
             "unet.up_blocks.0.attentions.2.proj_out.lora_B.weight": torch.zeros(8, 4)}
    keys = set(to_kohya(state, "sdxl", 4.0))
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in keys
    assert "lora_unet_middle_block_1_proj_in.lora_down.weight" in keys
    assert "lora_unet_output_blocks_2_1_proj_out.lora_up.weight" in keys
    assert not any("down_blocks" in k or "mid_block" in k or "up_blocks" in k for k in keys)
    # SD 1.x: kohya's own network is built on diffusers' UNet, so its names stay diffusers'.
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight" in to_kohya(
        {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 8)}, "sd15", 4.0)
