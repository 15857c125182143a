"""`model.scratch_scale_shift`: the prompt + timestep embedding scales and shifts each ResNet block's
normalised features (AdaGN) in the from-scratch model, and the choice survives saving."""

import torch
from diffusers import UNet2DConditionModel

from coverforge.config import ModelConfig
from coverforge.training.scratch import build_scratch_parts

SMALL = dict(scratch_channels=[8, 16], scratch_sample_size=8, scratch_cross_attention_dim=32)


def _resnets(unet):
    return [m for m in unet.modules() if m.__class__.__name__ == "ResnetBlock2D"]


def test_scale_shift_doubles_the_embedding_projection_and_survives_saving(tmp_path):
    plain = build_scratch_parts(ModelConfig(**SMALL), "v_prediction", seed=0).unet
    adagn = build_scratch_parts(ModelConfig(**SMALL, scratch_scale_shift=True), "v_prediction", seed=0).unet
    assert plain.config.resnet_time_scale_shift == "default" and adagn.config.resnet_time_scale_shift == "scale_shift"
    for block in _resnets(adagn):  # one scale and one shift per channel
        assert block.time_emb_proj.out_features == 2 * block.conv1.out_channels
    for block in _resnets(plain):
        assert block.time_emb_proj.out_features == block.conv1.out_channels

    torch.manual_seed(0)
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([10, 900])
    a, b = torch.randn(1, 77, 32), torch.randn(1, 77, 32)
    # Zero-initialised output convs would hide the conditioning: give them weights first.
    for p in adagn.parameters():
        p.data.add_(0.02 * torch.randn_like(p))
    with torch.no_grad():
        out_a = adagn(x, t, encoder_hidden_states=a.expand(2, -1, -1)).sample
        out_b = adagn(x, t, encoder_hidden_states=b.expand(2, -1, -1)).sample
    assert not torch.allclose(out_a, out_b, atol=1e-4)  # the prompt reaches the output

    adagn.save_pretrained(tmp_path / "unet")
    again = UNet2DConditionModel.from_pretrained(tmp_path / "unet")
    assert again.config.resnet_time_scale_shift == "scale_shift"
    with torch.no_grad():
        assert torch.equal(again(x, t, encoder_hidden_states=a.expand(2, -1, -1)).sample, out_a)
