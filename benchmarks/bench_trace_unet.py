"""`run.trace_unet`: the denoiser's training step eager and replayed from its trace, side by side in
one process (issue #18).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_trace_unet.py [--rounds 8] [--models sd15,small-sdxl,demo,qwen-image,z-image]

Models: the tiny SD 1.5 of bench_peer.py's SD 1.5 row (64 px, batch 4, LoRA rank 4 on the attention
projections), the small SDXL of its small rows (128 px, batch 4, the same LoRA), the demo's
from-scratch UNet (32x48 pixels, batch 16, every weight trained) and the tiny Qwen-Image and Z-Image
transformers of its flow rows (64 px, batch 4, the same LoRA; prompts of 40, 37, 40 and 31 tokens).
The inputs are the same every step, so Z-Image's trace applies here; in training it applies only
where the batch's pattern of prompt lengths recurs (training/traced_unet.py). A step is forward, backward, AdamW;
the two sides alternate, a few steps each, `--rounds` times, on the same weights and inputs. Prints
ms per step, the eager / traced ratio (median and range), whether both sides computed the same
losses, and what the trace adds to peak RSS (two fresh processes, one per side; Linux).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_models import SDXL_POOLED_DIM, SMALL_TEXT, small_unet  # noqa: E402
from tables import table  # noqa: E402

from coverforge.config import LoraConfig, load_config  # noqa: E402
from coverforge.models.lora import add_unet_lora  # noqa: E402
from coverforge.models.families import family_of  # noqa: E402
from coverforge.training.traced_unet import FlowForward, UNetForward  # noqa: E402

LORA = LoraConfig(rank=4, alpha=4, init="gaussian", unet_targets=["to_k", "to_q", "to_v", "to_out.0"])
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "src" / "coverforge" / "configs" / "demo-scratch.toml"


def peak_mb(name: str, side: str) -> float:
    """Peak RSS of a fresh process that builds `name` and trains it 3 steps on `side`: the trace's
    cost is the traced process's peak less the eager one's (freed heap cannot be read back in-process)."""
    cmd = [sys.executable, __file__, "--peak-of", name, side]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def child_peak(name: str, side: str) -> None:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        unet, args = model(name, Path(tmp))
        forward = denoiser(name, unet, side == "traced")
        optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4, fused=True)
        for _ in range(3):
            train_step(forward, optimizer, args)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child forked from this big
    # parent would report the parent's peak.
    with open("/proc/self/status") as f:
        print(int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) / 1024)


FLOW = ("qwen-image", "z-image")


def denoiser(name: str, module, trace: bool):
    """The call training makes (switches.training_forward's choice, made here by hand)."""
    if name in FLOW:
        return FlowForward(module, family_of(name).flow, trace)
    return UNetForward(module, trace)


def model(name: str, work: Path):
    """(denoiser with its trained tensors set, call arguments) for one of the cases."""
    g = torch.Generator().manual_seed(0)
    if name in FLOW:
        from coverforge.models.loading import load_model
        from coverforge.models.tiny import write_tiny_model

        transformer = load_model(write_tiny_model(name, work / f"tiny-{name}")).unet
        channels = transformer.config.in_channels // (4 if name == "qwen-image" else 1)
        width = transformer.config.joint_attention_dim if name == "qwen-image" else transformer.config.cap_feat_dim
        mask = torch.tensor([[1] * n + [0] * (40 - n) for n in (40, 37, 40, 31)])
        args = (torch.randn(4, channels, 8, 8, generator=g), torch.rand(4, generator=g),
                torch.randn(4, 40, width, generator=g) * mask[..., None], mask)
        transformer.requires_grad_(False)
        add_unet_lora(transformer, LORA, name)
        return transformer, args
    if name == "demo":
        from coverforge.training.scratch import build_scratch_parts

        cfg = load_config(DEMO_CONFIG, ["data.dataset=unused"])
        unet = build_scratch_parts(cfg.model, cfg.train.prediction_type, seed=0).unet  # from scratch: all of it trains
        batch, h, w = cfg.train.batch_size, 48, 32
        args = (torch.randn(batch, 3, h, w, generator=g), torch.randint(0, 1000, (batch,), generator=g),
                torch.randn(batch, 77, cfg.model.scratch_cross_attention_dim, generator=g), None)
        return unet, args
    if name == "sd15":
        from coverforge.models.loading import load_model
        from coverforge.models.tiny import write_tiny_model

        unet = load_model(write_tiny_model("sd15", work / "tiny-sd15")).unet
        args = (torch.randn(4, 4, 8, 8, generator=g), torch.randint(0, 1000, (4,), generator=g),
                torch.randn(4, 77, unet.config.cross_attention_dim, generator=g), None)
    else:
        unet = small_unet()
        pooled = SMALL_TEXT[1][0]
        added = {"text_embeds": torch.randn(4, pooled, generator=g), "time_ids": torch.tensor([[128.0, 128, 0, 0, 128, 128]] * 4)}
        args = (torch.randn(4, 4, 16, 16, generator=g), torch.randint(0, 1000, (4,), generator=g),
                torch.randn(4, 77, unet.config.cross_attention_dim, generator=g), added)
    unet.requires_grad_(False)
    add_unet_lora(unet, LORA, "sdxl" if name == "small-sdxl" else "sd15")
    return unet, args


def measure(name: str, rounds: int, steps: int, work: Path) -> list[str]:
    """One row: both sides built from the same seed, warmed (the trace is made on the second step), then alternated."""
    sides = {}
    for side in ("eager", "traced"):
        torch.manual_seed(0)
        unet, args = model(name, work)
        unet.train()
        forward = denoiser(name, unet, side == "traced")
        optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4, fused=True)
        losses = [train_step(forward, optimizer, args) for _ in range(3)]  # warm-up; the trace is made here
        sides[side] = (forward, optimizer, args, losses)
    times = {side: [] for side in sides}
    for _ in range(rounds):
        for side, (forward, optimizer, args, _) in sides.items():
            start = time.perf_counter()
            for _ in range(steps):
                train_step(forward, optimizer, args)
            times[side].append((time.perf_counter() - start) / steps * 1000)
    ratios = sorted(e / t for e, t in zip(times["eager"], times["traced"]))
    same = sides["eager"][3] == sides["traced"][3]
    held = peak_mb(name, "traced") - peak_mb(name, "eager")
    return [name, f"{statistics.median(times['eager']):.1f}", f"{statistics.median(times['traced']):.1f}",
            f"{statistics.median(ratios):.2f}x", f"{ratios[0]:.2f}-{ratios[-1]:.2f}x", "yes" if same else "NO", f"{held:+.0f}"]


def train_step(forward, optimizer, args) -> float:
    sample = args[0]
    loss = (forward(*args) - sample).square().mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="sd15,small-sdxl,demo,qwen-image,z-image")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=0, help="steps per side per round (0: 20 / 3 / 3 by model)")
    parser.add_argument("--quick", action="store_true", help="two rounds of one step: a smoke run")
    parser.add_argument("--peak-of", nargs=2, metavar=("MODEL", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_of:
        child_peak(*args.peak_of)
        return
    rounds = 2 if args.quick else args.rounds
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {rounds} rounds, sides alternating")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            steps = 1 if args.quick else args.steps or {"sd15": 20, "qwen-image": 20, "z-image": 20}.get(name, 3)
            rows.append(measure(name, rounds, steps, Path(tmp)))
    print(table(["model", "eager ms/step", "traced ms/step", "eager / traced", "range", "same losses", "peak RSS, traced - eager, MB"], rows))


if __name__ == "__main__":
    main()
