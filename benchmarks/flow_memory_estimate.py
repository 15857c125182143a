"""What fits in 24 / 48 / 80 GB: Qwen-Image and Z-Image, LoRA and full fine-tuning, at 1024 px.

    .venv/bin/python benchmarks/flow_memory_estimate.py [--batch 1]

COMPUTED, not measured: every model is built at its real size from its published config on the
meta device (nothing is allocated), its parameters are counted per component, and one training
forward of a 1024x1024 sample is run on the meta device while a saved-tensors hook adds up the
bytes autograd keeps for the backward pass. Prints the component sizes, the activations and the
table the README quotes. A GPU run (the issue's device script) is what would confirm it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
CARDS = (24, 48, 80)
RESERVED_GIB = 1.0
"""Left for the CUDA context, cuBLAS workspace and allocator slack: a card 'fits' when the
estimate plus this is at most its size (24 / 48 / 80 GiB, as nvidia-smi reports those cards)."""

# The published config.json values of the hub repos (Qwen/Qwen-Image, Tongyi-MAI/Z-Image), which
# diffusers' and transformers' class defaults do not all match.
QWEN_IMAGE_TRANSFORMER = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
                              num_attention_heads=24, joint_attention_dim=3584, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
QWEN_IMAGE_TEXT = dict(  # Qwen2.5-VL-7B-Instruct
    text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                     num_key_value_heads=4, vocab_size=152064, rms_norm_eps=1e-6, rope_theta=1e6,
                     rope_scaling={"type": "default", "mrope_section": [16, 24, 24]}),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                       patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
    tie_word_embeddings=False,
)
QWEN_IMAGE_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                      temperal_downsample=[False, True, True])
Z_IMAGE_TRANSFORMER = dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_layers=30,
                           n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True, cap_feat_dim=2560,
                           rope_theta=256.0, t_scale=1000.0, axes_dims=(32, 48, 48), axes_lens=(1536, 512, 512))
Z_IMAGE_TEXT = dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,  # Qwen3-4B
                    num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True)
Z_IMAGE_VAE = dict(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512),  # FLUX.1's
                   layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                   use_quant_conv=False, use_post_quant_conv=False)

SIDE = 1024          # pixels; 2:3 buckets at this area have about the same token count (832x1248: 4056 patches)
LATENT_SIDE = SIDE // 8


class _FusedAttention(torch.autograd.Function):
    """What a fused attention kernel (flash / memory-efficient SDPA, the ones bf16 runs on a GPU)
    keeps for backward: q, k, v, the output and one fp32 logsumexp per query row; never the
    (tokens x tokens) attention matrix that the meta device's math fallback would save."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = torch.empty_like(q)
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx, grad):  # never run: only the forward's bookkeeping is counted
        q, k, v, _, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


def _fused_sdpa(query, key, value, *args, **kwargs):
    return _FusedAttention.apply(query, key, value)


def build(family: str) -> dict[str, torch.nn.Module]:
    """The three components at their real sizes, on the meta device, in bf16."""
    import diffusers
    import transformers

    with torch.device("meta"):
        if family == "qwen-image":
            parts = {"transformer": diffusers.QwenImageTransformer2DModel(**QWEN_IMAGE_TRANSFORMER),
                     "text_encoder": transformers.Qwen2_5_VLForConditionalGeneration(transformers.Qwen2_5_VLConfig(**QWEN_IMAGE_TEXT)),
                     "vae": diffusers.AutoencoderKLQwenImage(**QWEN_IMAGE_VAE)}
        else:
            parts = {"transformer": diffusers.ZImageTransformer2DModel(**Z_IMAGE_TRANSFORMER),
                     "text_encoder": transformers.Qwen3Model(transformers.Qwen3Config(**Z_IMAGE_TEXT)),
                     "vae": diffusers.AutoencoderKL(**Z_IMAGE_VAE)}
    return {name: m.to(torch.bfloat16).requires_grad_(False) for name, m in parts.items()}


def _blocks(transformer) -> list[torch.nn.Module]:
    """The blocks diffusers checkpoints one by one under gradient checkpointing."""
    names = ("transformer_blocks", "noise_refiner", "context_refiner", "layers")
    return [b for n in names if hasattr(transformer, n) for b in getattr(transformer, n)]


def _forward(transformer, family: str, text_tokens: int) -> None:
    """One training forward of one SIDE x SIDE sample with `text_tokens` prompt tokens."""
    with torch.device("meta"):
        t = torch.empty(1, dtype=torch.bfloat16)
        if family == "qwen-image":
            h = w = LATENT_SIDE // 2  # 2x2 patches packed by the pipeline
            transformer(hidden_states=torch.empty(1, h * w, 64, dtype=torch.bfloat16),
                        encoder_hidden_states=torch.empty(1, text_tokens, 3584, dtype=torch.bfloat16),
                        encoder_hidden_states_mask=None, timestep=t, img_shapes=[[(1, h, w)]], return_dict=False)
        else:
            transformer([torch.empty(16, 1, LATENT_SIDE, LATENT_SIDE, dtype=torch.bfloat16)], t,
                        [torch.empty(text_tokens, 2560, dtype=torch.bfloat16)], return_dict=False)


def activations(transformer, family: str, text_tokens: int) -> dict[str, int]:
    """Bytes autograd saves in one forward: in all (no checkpointing), the most one block saves,
    what lies outside the blocks, and the blocks' inputs (what checkpointing keeps instead)."""
    params = {id(p) for p in transformer.parameters()}
    blocks = _blocks(transformer)
    current: list[int | None] = [None]
    per_block: dict[int | None, int] = {}
    inputs: dict[int, int] = {}
    seen: set[int] = set()
    keep: list[torch.Tensor] = []  # holds every counted tensor so no id is reused during the forward

    def count_once(t: torch.Tensor) -> int:
        base = t._base if t._base is not None else t  # a view shares its base's memory
        if id(base) in params or id(base) in seen:
            return 0
        seen.add(id(base))
        keep.append(base)
        return base.numel() * base.element_size()

    def pack(t: torch.Tensor) -> torch.Tensor:
        per_block[current[0]] = per_block.get(current[0], 0) + count_once(t)
        return t

    def enter(i):
        def hook(module, args, kwargs):
            current[0] = i
            # Checkpointing keeps each block's inputs (shared ones, like the rotary tables, once).
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            tensors += [x for a in (*args, *kwargs.values()) if isinstance(a, (tuple, list)) for x in a if isinstance(x, torch.Tensor)]
            inputs[i] = sum(count_once(x) for x in tensors)
        return hook

    def leave(module, args, output):
        current[0] = None

    handles = [b.register_forward_pre_hook(enter(i), with_kwargs=True) for i, b in enumerate(blocks)]
    handles += [b.register_forward_hook(leave) for b in blocks]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = _fused_sdpa
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            _forward(transformer, family, text_tokens)
    finally:
        torch.nn.functional.scaled_dot_product_attention = sdpa
        for h in handles:
            h.remove()
    in_blocks = [v for k, v in per_block.items() if k is not None]
    return {"all": sum(per_block.values()) + sum(inputs.values()), "block_max": max(in_blocks),
            "outside": per_block.get(None, 0), "block_inputs": sum(inputs.values()), "blocks": len(blocks)}


def _params(module: torch.nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def _linear_params(module: torch.nn.Module) -> int:
    """Weights of the Linear layers: what bitsandbytes int8 / nf4 quantisation stores in fewer bits."""
    return sum(m.weight.numel() for m in module.modules() if type(m) is torch.nn.Linear)


def estimate(family: str, batch: int) -> tuple[list[list[object]], list[str]]:
    from coverforge.config import load_config
    from coverforge.models.lora import add_unet_lora

    cfg = load_config(ROOT / "configs" / f"{family}-lora-covers.toml", ["data.dataset=none"])
    tokens = cfg.text.max_tokens  # the longest prompt the shipped config reads (1024 / 512)
    parts = build(family)
    tr, te, vae = parts["transformer"], parts["text_encoder"], parts["vae"]
    n_tr, n_te, n_vae, n_lin = _params(tr), _params(te), _params(vae), _linear_params(tr)
    notes = [f"{family}: transformer {n_tr / 1e9:.2f} B parameters ({n_tr * 2 / GIB:.1f} GiB in bf16; {n_lin / n_tr:.1%} in "
             f"Linear layers), text encoder {n_te / 1e9:.2f} B ({n_te * 2 / GIB:.1f} GiB), VAE {n_vae / 1e6:.0f} M "
             f"({n_vae * 2 / GIB:.2f} GiB); {tokens} prompt tokens + {(LATENT_SIDE // 2) ** 2} image tokens a sample"]

    full = {**activations(tr.requires_grad_(True), family, tokens)}
    tr.requires_grad_(False)
    add_unet_lora(tr, cfg.lora, family)
    n_lora = _params(tr, trainable=True)
    lora = activations(tr, family, tokens)
    notes.append(f"{family}: LoRA rank {cfg.lora.rank} (configs/{family}-lora-covers.toml) trains {n_lora / 1e6:.2f} M parameters")
    for name, a in (("full", full), ("LoRA", lora)):
        notes.append(f"{family} {name} activations a sample: {a['all'] / GIB:.1f} GiB without checkpointing; with it "
                     f"{a['block_inputs'] / GIB:.2f} GiB of block inputs ({a['blocks']} blocks) + {a['block_max'] / GIB:.2f} GiB "
                     f"(one block recomputed) + {a['outside'] / GIB:.2f} GiB outside the blocks")

    def act(a: dict, gc: bool) -> float:
        return batch * (a["block_inputs"] + a["block_max"] + a["outside"] if gc else a["all"])

    vae_bytes = n_vae * 2  # stays on the GPU for validation samples (run.offload_vae moves it off)
    rest = n_tr - n_lin
    # fp32 weights under bf16 autocast: each Linear's bf16 copy is what its backward multiplies the
    # incoming gradient by, so autograd keeps them until the backward pass; checkpointing drops them
    # with the rest of a block's saves, except for trained weights, whose copies autocast caches for
    # the whole forward.
    copies, one_block = n_lin * 2, n_lin * 2 / lora["blocks"]
    recipes = [
        # (label, resident weights, trained state, activations dict, bf16 weight copies kept without / with checkpointing)
        (f"LoRA r{cfg.lora.rank}, base bf16 (shipped config)", n_tr * 2, n_lora * 16, lora, (0, 0)),
        (f"LoRA r{cfg.lora.rank}, base fp32 under autocast (before this round)", n_tr * 4, n_lora * 16, lora, (copies, one_block)),
        (f"LoRA r{cfg.lora.rank}, base int8", n_lin * 1 + rest * 2, n_lora * 16, lora, (0, 0)),
        (f"LoRA r{cfg.lora.rank}, base nf4", n_lin * (0.5 + 4 / 64) + rest * 2, n_lora * 16, lora, (0, 0)),
        ("full, AdamW", 0, n_tr * 16, full, (copies, copies)),
        ("full, 8-bit AdamW", 0, n_tr * 10, full, (copies, copies)),
    ]
    rows = []
    for label, weights, state, a, kept in recipes:
        for gc in (False, True):
            activ = act(a, gc) + kept[gc]
            total = (weights + state + vae_bytes + activ) / GIB
            fits = " / ".join("yes" if total + RESERVED_GIB <= c else "no" for c in CARDS)
            rows.append([family, label, "on" if gc else "off", f"{(weights + state) / GIB:.1f}", f"{activ / GIB:.1f}",
                         f"{total:.1f}", fits])
    notes.append(f"{family}: keeping the text encoder on the GPU (run.cache = false, or a trained text encoder) adds "
                 f"{n_te * 2 / GIB:.1f} GiB in bf16 (plus its own LoRA state and activations when trained)")
    return rows, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1, help="samples per step (activations scale with it)")
    args = ap.parse_args()
    rows, notes = [], []
    for family in ("qwen-image", "z-image"):
        r, n = estimate(family, args.batch)
        rows += r
        notes += n
    print(f"### What fits, computed (not measured): {SIDE}x{SIDE} px, batch {args.batch}, bf16 mixed precision\n")
    print(table(["family", "recipe", "gradient checkpointing", "weights + trained state GiB", "activations GiB", "total GiB",
                 "fits 24 / 48 / 80 GB"], rows))
    print()
    for line in notes:
        print(f"- {line}")
    print(f"\nHow: total = resident transformer weights (bf16 2 B, fp32 4 B, int8 1 B, nf4 0.5 B + one fp32 scale per 64 "
          f"weights for Linear weights, the rest bf16) + trained state (fp32 weight, gradient and two AdamW moments: 16 B "
          f"a trained parameter; 8-bit AdamW: 4 + 4 + 2 B; a full fine-tune keeps the transformer in fp32) + VAE in bf16 "
          f"+ activations; fp32 weights also leave autocast's bf16 copy of every Linear weight saved for backward (2 B "
          f"a weight, in the activations column; with checkpointing one block's, or all of them for trained weights, "
          f"which autocast caches through the forward). Activations = bytes autograd saves for backward during one meta-device forward (frozen weights "
          f"excluded, views counted once, attention as a fused kernel saves it), times the batch; with checkpointing, the "
          f"blocks' inputs + the largest block's saves (recomputed one block at a time) + what lies outside the blocks. "
          f"Text encoder cached and off the GPU (the shipped configs). Not counted: the backward pass's transient "
          f"buffers, allocator fragmentation, optimizer-step temporaries; {RESERVED_GIB:.0f} GiB is left for the CUDA "
          f"context. Parameter counts are exact; activations are as exact as autograd's bookkeeping on the meta device.")


if __name__ == "__main__":
    main()
