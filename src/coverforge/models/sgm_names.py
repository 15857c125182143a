"""diffusers UNet module names -> the original (Stability "sgm" / LDM) UNet's names.

kohya's SDXL tools, A1111 and ComfyUI name SDXL LoRA modules after the original UNet
(`input_blocks.4.1.transformer_blocks.0.attn1.to_q`), not diffusers' (`down_blocks.1.attentions.0...`),
and silently drop keys they do not know. The original UNet numbers its blocks in one sequence per
side: on the way down, `input_blocks.0` is conv_in, then each level has `layers_per_block`
(resnet [+ attention]) blocks and, except the last level, one downsampler; on the way up each
level has `layers_per_block + 1` blocks, the upsampler sitting in the last one after its attention.
Checked against diffusers' own converter from the original layout (tests/models/test_kohya_export.py).
"""

from __future__ import annotations

import re

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TOP = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
       "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}

_BLOCK = re.compile(r"(down_blocks|up_blocks)\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)(?:\.(.*))?$")
_MID = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)(?:\.(.*))?$")


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return ".".join(filter(None, (RESNET.get(head, head), tail)))


def sgm_module_name(module: str, layers_per_block: int, up_attention: list[bool]) -> str:
    """The original UNet's name of a diffusers UNet module (or parameter) path.

    up_attention: per up level, whether its blocks hold attention (the upsampler's index in the
    block follows it)."""
    per = layers_per_block + 1
    for old, new in TOP.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    m = _MID.match(module)
    if m:
        kind, j, rest = m.group(1), int(m.group(2)), m.group(3) or ""
        if kind == "resnets":
            return ".".join(filter(None, (f"middle_block.{2 * j}", _resnet(rest))))
        return ".".join(filter(None, ("middle_block.1", rest)))
    m = _BLOCK.match(module)
    if not m:
        raise ValueError(f"no original-UNet name for {module!r}")
    side, i, kind, j, rest = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5) or ""
    if side == "down_blocks":
        if kind == "downsamplers":  # diffusers' `.conv` is the original's `.op`
            return ".".join(filter(None, (f"input_blocks.{(i + 1) * per}.0", rest.replace("conv", "op", 1))))
        block = f"input_blocks.{1 + i * per + j}"
    else:
        if kind == "upsamplers":
            return ".".join(filter(None, (f"output_blocks.{i * per + layers_per_block}.{2 if up_attention[i] else 1}", rest)))
        block = f"output_blocks.{i * per + j}"
    if kind == "resnets":
        return ".".join(filter(None, (f"{block}.0", _resnet(rest))))
    return ".".join(filter(None, (f"{block}.1", rest)))


def unet_layout(unet_config: dict) -> tuple[int, list[bool]]:
    """(layers_per_block, per up level: has attention) from a diffusers UNet config."""
    lpb = unet_config.get("layers_per_block", 2)
    if isinstance(lpb, (list, tuple)):
        if len(set(lpb)) != 1:
            raise ValueError("UNets with a different layers_per_block per level have no single original layout")
        lpb = lpb[0]
    return int(lpb), ["CrossAttn" in t for t in unet_config.get("up_block_types", ())]


# The real SDXL UNet's layout: what an exported LoRA assumes when its base model's config cannot be read.
SDXL_LAYOUT = (2, [True, True, False])
