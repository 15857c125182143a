"""Where a training step's compute goes: the FLOPs that the latent + text caches remove, counted.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cache_flops.py --measured-tiny 1.31 --measured-small 1.45
    .venv/bin/python benchmarks/bench_cache_flops.py --no-timing      # FLOP counts only (~1 min)

With both caches on and the text encoders frozen, a training step is the UNet's forward and
backward; the uncached step adds the VAE encode of the batch and both text encoders over each
prompt's 77-token windows. So the best the caches can do is (UNet step + VAE encode + text) /
UNet step. This script counts those three pieces, per image, for the tiny SDXL
(`coverforge tiny-model`), the small SDXL of small_models.py (both at 128 px, configs read from
folders written into a temporary directory) and the real SDXL-base (UNet, VAE and the CLIP ViT-L/14
and OpenCLIP bigG text encoders built from their published shapes, no weights) at 1024 and 128 px:
  (a) UNet LoRA training step: forward + the backward that autograd really runs (LoRA 'attn'
      preset, rank 32, frozen base: no gradients for frozen weights, none for the input latents),
      context 77 * k tokens;
  (b) VAE encode (encoder + quant_conv) of one image;
  (c) both text encoders over k windows of 77 tokens, all layers (SDXL reads the penultimate
      hidden state, but the last layer and the pooled projection run too).
How: torch.utils.flop_counter.FlopCounterMode over a real forward/backward of modules built on
the meta device (shapes only, no memory). It counts matmuls, convolutions and their backward; on
meta, scaled_dot_product_attention takes the math path, whose bmm calls are counted (on a CPU
device the fused attention kernel is not counted at all, hence meta). Normalisations,
activations, softmax and other elementwise ops are not counted.

Then, for tiny and small, it times the same three pieces on the CPU (one thread, batch 4, 128 px,
k = 4 windows, weights from the saved folders, median of 7 after 2 warm-ups) and prints the
achieved GFLOP/s of each: an operator-bound piece (many small ops) runs at a lower rate, and a
UNet that runs slower per FLOP than the text encoders makes the measured cache ratio fall short
of the FLOP ratio. The measured ratios from RESULTS.md come in as arguments and are printed beside
the predictions.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import diffusers
import torch
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import table  # noqa: E402
from small_models import SDXL_BASE_UNET, write_small_sdxl  # noqa: E402

from coverforge.config import LoraConfig  # noqa: E402
from coverforge.models.lora import add_unet_lora  # noqa: E402
from coverforge.models.tiny import VAE_SCALING, write_tiny_model  # noqa: E402

WINDOW = 77  # CLIP's context: one window = BOS + 75 tokens + EOS, padded
TEXT_WINDOWS = (1, 3, 4, 5, 6)
"""Windows counted. The bench prompts have 3-6 (median 4-5); a batch is padded to its longest
prompt, so the text encoders and the UNet's context both see the batch's largest count."""
RATIO_K = 4
UNET_WINDOWS = (TEXT_WINDOWS[0], RATIO_K, TEXT_WINDOWS[-1])
"""UNet context lengths counted; the others are interpolated. The context enters the UNet only
through the cross-attention K/V projections and the attention products, all linear in its
length, so the UNet's FLOPs are affine in k; the count at RATIO_K checks that."""
TIMING_BATCH, TIMING_SIDE, TIMING_RUNS, TIMING_WARMUP = 4, 128, 7, 2
GIGA = 1e9

# stabilityai/stable-diffusion-xl-base-1.0: vae/config.json and the two text encoders' shapes.
SDXL_VAE = {
    "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
    "latent_channels": 4, "norm_num_groups": 32, "act_fn": "silu", "sample_size": 1024,
    "scaling_factor": VAE_SCALING["sdxl"], "force_upcast": True,
}
CLIP_L_TEXT = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                             num_attention_heads=12, max_position_embeddings=WINDOW, hidden_act="quick_gelu",
                             projection_dim=768, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
BIGG_TEXT = CLIPTextConfig(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                           num_attention_heads=20, max_position_embeddings=WINDOW, hidden_act="gelu",
                           projection_dim=1280, bos_token_id=49406, eos_token_id=49407, pad_token_id=0)


@dataclasses.dataclass
class ModelConfigs:
    """Everything needed to build one SDXL's three parts on any device."""

    name: str
    unet: dict
    vae: dict
    text: tuple[CLIPTextConfig, CLIPTextConfig]
    sides: tuple[int, ...]
    folder: Path | None = None
    """The saved model (tiny, small): timed with its own weights."""

    def build(self, device: str) -> tuple[UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTextModelWithProjection]:
        if self.folder is not None and device != "meta":
            f = self.folder
            return (UNet2DConditionModel.from_pretrained(f / "unet"), AutoencoderKL.from_pretrained(f / "vae"),
                    CLIPTextModel.from_pretrained(f / "text_encoder"), CLIPTextModelWithProjection.from_pretrained(f / "text_encoder_2"))
        with torch.device(device):
            return (UNet2DConditionModel.from_config(self.unet), AutoencoderKL.from_config(self.vae),
                    CLIPTextModel(self.text[0]), CLIPTextModelWithProjection(self.text[1]))


def from_folder(name: str, folder: Path, sides: tuple[int, ...]) -> ModelConfigs:
    text = (CLIPTextConfig.from_pretrained(folder / "text_encoder"), CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))
    return ModelConfigs(name, dict(UNet2DConditionModel.load_config(folder / "unet")), dict(AutoencoderKL.load_config(folder / "vae")),
                        text, sides, folder)


def real_sdxl(sides: tuple[int, ...]) -> ModelConfigs:
    return ModelConfigs("SDXL-base", SDXL_BASE_UNET, SDXL_VAE, (CLIP_L_TEXT, BIGG_TEXT), sides)


# --- inputs ----------------------------------------------------------------------------------


def unet_inputs(unet: UNet2DConditionModel, batch: int, side: int, k: int, device: str) -> dict:
    """What the cached path feeds the UNet: latents, timesteps, 77k-token context, pooled + time ids."""
    cfg = unet.config
    pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    with torch.device(device):
        return {"sample": torch.randn(batch, cfg.in_channels, side // 8, side // 8),
                "timestep": torch.randint(0, 1000, (batch,)),
                "encoder_hidden_states": torch.randn(batch, WINDOW * k, cfg.cross_attention_dim),
                "added_cond_kwargs": {"text_embeds": torch.randn(batch, pooled),
                                      "time_ids": torch.tensor([[side, side, 0, 0, side, side]] * batch, dtype=torch.float32)}}


def text_ids(encoder: torch.nn.Module, batch: int, k: int, device: str) -> torch.Tensor:
    """batch * k windows of 77 ids (random: the cost does not depend on the tokens)."""
    return torch.randint(0, encoder.config.vocab_size, (batch * k, WINDOW), device=device)


def lora_unet(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """As the LoRA recipe trains it: frozen base, adapters on the attention layers."""
    unet.requires_grad_(False)
    add_unet_lora(unet, LoraConfig())
    return unet.train()


# --- the three pieces, as callables --------------------------------------------------------------


def unet_step(unet: UNet2DConditionModel, inputs: dict, on_forward: Callable[[], None] = lambda: None) -> None:
    pred = unet(**inputs, return_dict=False)[0]
    on_forward()
    torch.nn.functional.mse_loss(pred, torch.randn_like(pred)).backward()
    unet.zero_grad(set_to_none=True)


def vae_encode(vae: AutoencoderKL, pixels: torch.Tensor) -> None:
    with torch.no_grad():
        vae.encode(pixels).latent_dist.mean


def text_encode(encoders: tuple[torch.nn.Module, ...], ids: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for enc, i in zip(encoders, ids):
            enc(i, output_hidden_states=True)  # as TextConditioner runs them


# --- counting ----------------------------------------------------------------------------------


def counted(fn: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@dataclasses.dataclass
class Counts:
    """FLOPs per image of one model at one size."""

    model: str
    side: int
    unet_forward: dict[int, int]  # by text windows k (context 77k)
    unet_step: dict[int, int]
    vae_encode: int
    text: dict[int, tuple[int, int]]  # by k: (encoder 1, encoder 2)
    interpolation_error: float
    """|interpolated - counted| / counted for the UNet step at RATIO_K."""

    def step_per_window(self) -> float:
        lo, hi = UNET_WINDOWS[0], UNET_WINDOWS[-1]
        return (self.unet_step[hi] - self.unet_step[lo]) / (hi - lo)

    def ratio(self, k: int) -> float:
        return (self.unet_step[k] + self.vae_encode + sum(self.text[k])) / self.unet_step[k]


def count_unet(unet: UNet2DConditionModel, side: int, k: int) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one LoRA training step of one image, on meta."""
    inputs = unet_inputs(unet, 1, side, k, "meta")
    forward: list[int] = []
    with FlopCounterMode(display=False) as counter:
        unet_step(unet, inputs, on_forward=lambda: forward.append(counter.get_total_flops()))
    return forward[0], counter.get_total_flops()


def affine(by_k: dict[int, int], k: int) -> int:
    lo, hi = UNET_WINDOWS[0], UNET_WINDOWS[-1]
    return round(by_k[lo] + (by_k[hi] - by_k[lo]) * (k - lo) / (hi - lo))


def count_model(cfg: ModelConfigs, side: int) -> Counts:
    unet, vae, te1, te2 = cfg.build("meta")
    lora_unet(unet)
    fwd, step = {}, {}
    for k in UNET_WINDOWS:
        fwd[k], step[k] = count_unet(unet, side, k)
    error = abs(affine(step, RATIO_K) - step[RATIO_K]) / step[RATIO_K]
    for k in set(TEXT_WINDOWS) - set(UNET_WINDOWS):
        fwd[k], step[k] = affine(fwd, k), affine(step, k)
    vae_flops = counted(lambda: vae_encode(vae, torch.randn(1, 3, side, side, device="meta")))
    text = {k: (counted(lambda: text_encode((te1,), [text_ids(te1, 1, k, "meta")])),
                counted(lambda: text_encode((te2,), [text_ids(te2, 1, k, "meta")]))) for k in TEXT_WINDOWS}
    return Counts(cfg.name, side, fwd, step, vae_flops, text, error)


def parameter_row(cfg: ModelConfigs) -> list[str]:
    unet, vae, te1, te2 = cfg.build("meta")
    lora_unet(unet)

    def n(params) -> str:
        total = sum(p.numel() for p in params)
        return f"{total / 1e6:,.1f} M" if total >= 1e5 else f"{total / 1e3:.1f} k"

    base = [p for p in unet.parameters() if not p.requires_grad]
    lora = [p for p in unet.parameters() if p.requires_grad]
    encoder = [*vae.encoder.parameters(), *vae.quant_conv.parameters()]
    return [cfg.name, n(base), n(lora), n(encoder), n(vae.parameters()), n(te1.parameters()), n(te2.parameters())]


# --- timing ------------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], None]) -> float:
    for _ in range(TIMING_WARMUP):
        fn()
    times = []
    for _ in range(TIMING_RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_model(cfg: ModelConfigs, counts: Counts) -> list[list[str]]:
    """CPU seconds and GFLOP/s of each piece at batch 4, 128 px, k windows (FLOPs from `counts`)."""
    torch.manual_seed(0)
    unet, vae, te1, te2 = (m.eval() for m in cfg.build("cpu"))
    lora_unet(unet)
    b, k = TIMING_BATCH, RATIO_K
    inputs = unet_inputs(unet, b, TIMING_SIDE, k, "cpu")
    pixels = torch.rand(b, 3, TIMING_SIDE, TIMING_SIDE) * 2 - 1
    ids = [text_ids(te1, b, k, "cpu"), text_ids(te2, b, k, "cpu")]
    pieces = {
        "UNet step (fwd + bwd)": (lambda: unet_step(unet, inputs), counts.unet_step[k]),
        "VAE encode": (lambda: vae_encode(vae, pixels), counts.vae_encode),
        f"text encoders, k={k}": (lambda: text_encode((te1, te2), ids), sum(counts.text[k])),
    }
    seconds = {name: median_seconds(fn) for name, (fn, _) in pieces.items()}
    unet_s = seconds["UNet step (fwd + bwd)"]
    rows = []
    for name, (_, flops) in pieces.items():
        s = seconds[name]
        rows.append([cfg.name, name, f"{s * 1e3:.1f}", f"{s / unet_s:.2f}", f"{b * flops / GIGA:.2f}", f"{b * flops / s / GIGA:.1f}"])
    rows.append([cfg.name, "(a+b+c)/a", f"{sum(seconds.values()) * 1e3:.1f}", f"{sum(seconds.values()) / unet_s:.2f}x", "", ""])
    return rows


# --- main --------------------------------------------------------------------------------------


def g(flops: float) -> str:
    return f"{flops / GIGA:,.2f}" if flops < 1e12 else f"{flops / GIGA:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measured-tiny", type=float, help="measured cache speed-up of the tiny SDXL (RESULTS.md)")
    ap.add_argument("--measured-small", type=float, help="measured cache speed-up of the small SDXL (RESULTS.md)")
    ap.add_argument("--no-timing", action="store_true", help="FLOP counts only, no CPU timing")
    args = ap.parse_args()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    measured = {"tiny": args.measured_tiny, "small": args.measured_small}

    with tempfile.TemporaryDirectory(prefix="bench-cache-flops-") as tmp:
        models = [from_folder("tiny", write_tiny_model("sdxl", Path(tmp) / "tiny"), (128,)),
                  from_folder("small", write_small_sdxl(Path(tmp) / "small"), (128,)),
                  real_sdxl((1024, 128))]
        counts = [count_model(m, side) for m in models for side in m.sides]
        print(f"counted in {time.perf_counter() - started:.0f} s\n")

        print(f"### FLOPs per image (GFLOP), UNet context and text at k = {RATIO_K} windows unless said\n")
        rows = []
        for c in counts:
            m = measured.get(c.model)
            rows.append([c.model, c.side, g(c.unet_step[RATIO_K]), g(c.unet_forward[RATIO_K]),
                         f"{c.unet_step[RATIO_K] / c.unet_forward[RATIO_K]:.2f}", g(c.vae_encode),
                         f"{g(sum(c.text[3]))} / {g(sum(c.text[5]))}", f"{c.ratio(RATIO_K):.2f}x", f"{m:.2f}x" if m else "-"])
        print(table(["model", "px", "UNet step (fwd+bwd)", "UNet fwd", "step/fwd", "VAE encode", "text k=3 / k=5",
                     f"predicted ratio k={RATIO_K}", "measured ratio"], rows))

        print("\n### Predicted cache ratio (a+b+c)/a by windows k (k = the batch's longest prompt)\n")
        counted_at = ", ".join(str(k) for k in UNET_WINDOWS)
        worst = max(c.interpolation_error for c in counts)
        print(f"UNet counted at k = {counted_at}, linear in between (off the count at k={RATIO_K} by at most {worst:.1e}).\n")
        print(table(["model", "px", *(f"k={k}" for k in TEXT_WINDOWS), "UNet step GFLOP per window"],
                    [[c.model, c.side, *(f"{c.ratio(k):.2f}x" for k in TEXT_WINDOWS), g(c.step_per_window())] for c in counts]))

        print("\n### Text encoders per image: GFLOP of encoder 1 / encoder 2\n")
        print(table(["model", *(f"k={k}" for k in TEXT_WINDOWS)],
                    [[c.model, *(f"{g(c.text[k][0])} / {g(c.text[k][1])}" for k in TEXT_WINDOWS)]
                     for c in counts if c.side == 128]))

        print(f"\n### Parameters (LoRA: preset '{LoraConfig().unet_preset}', rank {LoraConfig().rank})\n")
        print(table(["model", "UNet (frozen)", "UNet LoRA", "VAE encoder + quant_conv", "VAE", "text encoder 1", "text encoder 2"],
                    [parameter_row(m) for m in models]))

        if not args.no_timing:
            torch.set_num_threads(1)
            print(f"\n### CPU, {torch.get_num_threads()} thread: batch {TIMING_BATCH}, {TIMING_SIDE} px, k = {RATIO_K}, "
                  f"median of {TIMING_RUNS} after {TIMING_WARMUP} warm-ups\n")
            rows = []
            for m in models[:2]:
                rows += time_model(m, next(c for c in counts if c.model == m.name and c.side == TIMING_SIDE))
            print(table(["model", "piece", "ms per batch", "vs UNet step", "GFLOP per batch", "GFLOP/s"], rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
