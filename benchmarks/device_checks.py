"""The GPU checks of #19 and #18 in one prepared run: LoRA training speed and peak memory of the
real-size Qwen-Image, Z-Image and SDXL denoisers at 1024 px, with and without the memory options.

    python3 benchmarks/device_checks.py [--out $OUT/device_checks.json] [--budget-s 480]
    .venv/bin/python benchmarks/device_checks.py --device cpu --tiny --steps 3 --out /tmp/checks.json

Each row builds the denoiser from its published config (benchmarks/flow_memory_estimate.py,
benchmarks/small_models.py) directly on the device with random weights, then takes training's own
path: the shipped config (configs/<family>-lora-covers.toml, with the row's overrides), the
quantisation, recipe, switches and placement of training/inputs.prepare_inputs (frozen base in the
mixed-precision dtype, LoRA adapters in fp32), the optimizer and LR schedule of training/recipe.py
(fused AdamW), autocast, a gradient scaler for fp16, clipping at train.max_grad_norm, and the loss
of training/flow_matching.py + the family's FlowModel.predict (SDXL: training/diffusion.py). One
optimizer step per sample (no accumulation). No text encoder and no VAE: training with the
shipped configs caches their outputs and moves them off the GPU, so a random prompt embedding of
the real width (512 tokens; SDXL: 512 tokens in 7 CLIP windows of 77) and random 16-channel
(SDXL: 4) latents of a 1024-px image stand in for the caches. The SDXL text encoders stay frozen
(the shipped SDXL config also trains LoRA on them: that is not measured here).

Images/s is timed over the steps after the warm-up (steps 6-20 of 20), peak memory is
torch.cuda.max_memory_allocated over the steps (resident weights included). An out-of-memory row is
a result ("oom"), any other failure is recorded with its message, and rows start only while
--budget-s lasts (a row running past it stops stepping and reports the steps it timed). The JSON is
rewritten after every row, so a run cut short still leaves what it measured.

With --tiny the same code runs on the tiny models' sizes (models/tiny.py, models/tiny_flow.py) at
64 px: what the test runs on the CPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow_memory_estimate import QWEN_IMAGE_TRANSFORMER, Z_IMAGE_TRANSFORMER  # noqa: E402
from small_models import SDXL_BASE_UNET  # noqa: E402
from tables import table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
REAL_CONFIGS = {"qwen-image": QWEN_IMAGE_TRANSFORMER, "z-image": Z_IMAGE_TRANSFORMER, "sdxl": SDXL_BASE_UNET}
# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json: the noise schedule SDXL trains with.
SDXL_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      prediction_type="epsilon", steps_offset=1, timestep_spacing="leading")
CLIP_WINDOW, CLIP_TEXT = 77, 75  # SDXL reads a long prompt in windows of BOS + 75 tokens + EOS (text/chunking.py)


@dataclass(frozen=True)
class Row:
    family: str
    precision: str  # train.mixed_precision: the frozen base's dtype and autocast's
    checkpointing: bool
    quantize: str = "none"  # model.quantize_denoiser

    @property
    def label(self) -> str:
        base = self.precision if self.quantize == "none" else self.quantize
        return f"{self.family} {base}{' + ckpt' if self.checkpointing else ''}"


# In order of value: a run cut short by the budget keeps the rows that matter most.
ROWS = [
    Row("qwen-image", "bf16", True), Row("z-image", "bf16", True),
    Row("qwen-image", "bf16", True, "int8"), Row("z-image", "bf16", True, "int8"),
    Row("qwen-image", "bf16", True, "nf4"), Row("z-image", "bf16", True, "nf4"),
    Row("qwen-image", "bf16", False), Row("z-image", "bf16", False),
    Row("sdxl", "fp16", True), Row("sdxl", "bf16", True),
]


def denoiser_config(family: str, tiny: bool, scratch: Path) -> dict:
    """The published config, or the tiny test model's (written once into `scratch`)."""
    if not tiny:
        return dict(REAL_CONFIGS[family])
    from coverforge.models.families import family_of
    from coverforge.models.tiny import write_tiny_model

    f = family_of(family)
    folder = scratch / family
    if not folder.exists():
        write_tiny_model(family, folder, seed=0)
    return json.loads((folder / f.denoiser / "config.json").read_text())


def scheduler_config(family: str) -> dict:
    from coverforge.models.families import family_of
    from coverforge.models.tiny_flow import QWEN_IMAGE_SCHEDULER, Z_IMAGE_SCHEDULER  # the published flow schedules

    if not family_of(family).has_flow:
        return dict(SDXL_SCHEDULER)
    return dict({"qwen-image": QWEN_IMAGE_SCHEDULER, "z-image": Z_IMAGE_SCHEDULER}[family])


def build_denoiser(family: str, config: dict, device: torch.device, dtype: torch.dtype, quantize: str) -> torch.nn.Module:
    """Random weights, initialised on the device itself (a 20B model initialised on the CPU takes minutes)."""
    import diffusers

    from coverforge.models.families import family_of

    f = family_of(family)
    cls = getattr(diffusers, f.classes[f.denoiser])
    torch.manual_seed(0)
    with torch.device(device):
        model = cls.from_config(config)
    model.to(dtype=dtype)  # as a checkpoint loads: in the precision its frozen weights will train in
    if quantize != "none" and device.type != "cpu":
        model.to("cpu")  # bitsandbytes quantises a weight as it moves from the CPU to the device (models/quantize.py)
    return model


def text_tokens(family: str, cfg, tokens: int) -> int:
    """Rows of the cached prompt embedding: the prompt's tokens, or SDXL's CLIP windows holding them."""
    from coverforge.models.families import family_of

    tokens = min(tokens, cfg.text.max_tokens)
    if family_of(family).has_flow:
        return tokens
    return math.ceil(tokens / CLIP_TEXT) * CLIP_WINDOW


def cached_inputs(family: str, config: dict, cfg, batch: int, side: int, tokens: int, device, dtype) -> dict:
    """What the latent and text caches hand a training step: latents, prompt embedding, mask (SDXL: pooled, time ids)."""
    from coverforge.models.families import family_of

    g = torch.Generator().manual_seed(1)
    f = family_of(family)
    channels = config["out_channels"] if "out_channels" in config else config["in_channels"]  # Z-Image names only in_channels
    width = config.get("joint_attention_dim") or config.get("cap_feat_dim") or config["cross_attention_dim"]
    length = text_tokens(family, cfg, tokens)
    out = {"latents": torch.randn(batch, channels, side // 8, side // 8, generator=g).to(device),
           "hidden": torch.randn(batch, length, width, generator=g).to(device, dtype),
           "mask": torch.ones(batch, length, dtype=torch.long, device=device)}
    if not f.has_flow:
        pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        out["pooled"] = torch.randn(batch, pooled, generator=g).to(device, dtype)
        out["time_ids"] = torch.tensor([[side, side, 0, 0, side, side]] * batch, device=device, dtype=dtype)
    return out


def flow_loss(family: str, unet, scheduler: dict, cfg, x: dict, gen: torch.Generator) -> torch.Tensor:
    """training/loop._flow_loss on cached inputs."""
    from coverforge.models.families import family_of
    from coverforge.training.diffusion import diffusion_loss
    from coverforge.training.flow_matching import draw_sigmas, noisy_latents, shift_sigmas, velocity_target

    t, flow, latents = cfg.train, family_of(family).flow, x["latents"]
    noise = torch.randn(latents.shape, generator=gen, dtype=latents.dtype).to(latents.device)
    sigmas = draw_sigmas(latents.shape[0], gen, t.flow_weighting, t.flow_logit_mean, t.flow_logit_std)
    tokens = (latents.shape[2] // flow.patch) * (latents.shape[3] // flow.patch)
    sigmas = shift_sigmas(sigmas, scheduler, tokens, t.flow_shift).to(latents.device)
    pred = flow.predict(unet, noisy_latents(latents, noise, sigmas), sigmas, x["hidden"], x["mask"])
    return diffusion_loss(pred, velocity_target(latents, noise))


def ddpm_loss(unet, noise_scheduler, cfg, x: dict, gen: torch.Generator) -> torch.Tensor:
    """training/loop._loss's SD path on cached inputs."""
    from coverforge.training.diffusion import diffusion_loss, min_snr_weights, sample_noise, sample_timesteps, target_for

    t, latents = cfg.train, x["latents"]
    prediction = noise_scheduler.config.prediction_type
    noise = sample_noise(latents, gen, t.noise_offset)
    timesteps = sample_timesteps(latents.shape[0], gen, t.timestep_min, min(t.timestep_max, noise_scheduler.config.num_train_timesteps),
                                 latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    added = {"text_embeds": x["pooled"], "time_ids": x["time_ids"]}
    pred = unet(noisy, timesteps, encoder_hidden_states=x["hidden"], added_cond_kwargs=added, return_dict=False)[0]
    weights = min_snr_weights(noise_scheduler, timesteps, t.min_snr_gamma, prediction) if t.min_snr_gamma else None
    return diffusion_loss(pred, target_for(noise_scheduler, latents, noise, timesteps, prediction), weights)


def run_row(row: Row, args, device: torch.device, scratch: Path, deadline: float, out: dict) -> None:
    """Set up and train one row, filling `out` as it goes (a row that fails keeps what it measured)."""
    import diffusers

    from coverforge.config import load_config
    from coverforge.models.families import family_of
    from coverforge.models.loading import ModelParts
    from coverforge.models.quantize import quantize_parts
    from coverforge.training.recipe import apply_recipe, make_lr_schedule, make_optimizer
    from coverforge.training.switches import apply_switches, frozen_dtype, place_models

    side = 64 if args.tiny else args.side
    overrides = ["data.dataset=none", f"train.mixed_precision={row.precision}", f"model.quantize_denoiser={row.quantize}",
                 f"run.gradient_checkpointing={str(row.checkpointing).lower()}", f"train.batch_size={args.batch}",
                 # No text encoder is built: the prompt embeddings are the cache's (the SDXL config trains both encoders).
                 "train.train_text_encoder=false", "train.train_text_encoder_2=false"]
    cfg = load_config(ROOT / "configs" / f"{row.family}-lora-covers.toml", overrides)
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16}[row.precision]
    low = frozen_dtype(cfg.train, device)
    out.update(batch=args.batch, side_px=side, steps=args.steps, lora_rank=cfg.lora.rank, phase="setup")
    started = time.perf_counter()
    config = denoiser_config(row.family, args.tiny, scratch)
    unet = build_denoiser(row.family, config, device, low, row.quantize)
    parts = ModelParts(row.family, unet=unet, vae=None, text_encoder=None, tokenizer=None, scheduler_config=scheduler_config(row.family))
    # training/inputs.prepare_inputs' order: quantise, recipe (LoRA, checkpointing), switches, placement.
    quantize_parts(parts, cfg, device, low)
    trained = apply_recipe(parts, cfg)
    apply_switches(parts, cfg.run)
    place_models(parts, cfg.train, device)
    params = [p for part in trained for p in part.parameters()]
    optimizer = make_optimizer(cfg.train, trained)
    schedule = make_lr_schedule(cfg.train, optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=row.precision == "fp16")  # what Accelerate runs fp16 with
    x = cached_inputs(row.family, config, cfg, args.batch, side, args.text_tokens, device, low)
    out["text_tokens"] = x["hidden"].shape[1]
    out["trained_params_m"] = round(sum(p.numel() for p in params) / 1e6, 3)
    f = family_of(row.family)
    noise_scheduler = None if f.has_flow else getattr(diffusers, f.training_scheduler).from_config(parts.scheduler_config)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        out["resident_gib"] = round(torch.cuda.memory_allocated() / GIB, 2)
    out["setup_s"] = round(time.perf_counter() - started, 1)
    out["phase"] = "steps"
    warm = min(args.warmup, args.steps - 1)
    t0 = None
    done = 0
    for step in range(1, args.steps + 1):
        with torch.autocast(device.type, dtype=amp):
            loss = flow_loss(row.family, unet, parts.scheduler_config, cfg, x, gen) if f.has_flow else ddpm_loss(unet, noise_scheduler, cfg, x, gen)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        done = out["steps_done"] = step
        if step == warm:
            _sync(device)
            t0 = time.perf_counter()
        if step > warm and time.perf_counter() > deadline:
            out["note"] = f"stopped by the budget after {step} of {args.steps} steps"
            break
    _sync(device)
    timed = done - warm
    if t0 is not None and timed > 0:
        seconds = time.perf_counter() - t0
        out["step_s"] = round(seconds / timed, 4)
        out["images_per_s"] = round(args.batch * timed / seconds, 3)
    out["final_loss"] = round(loss.item(), 5)
    if device.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / GIB, 2)  # what the card must hold (allocator slack included)
    out["phase"] = "done"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(row: Row, args, device: torch.device, scratch: Path, deadline: float) -> dict:
    """One row as a record: measured, out of memory, or failed with its message (never a crash)."""
    base = {"row": row.label, "family": row.family, "precision": row.precision, "gradient_checkpointing": row.checkpointing,
            "quantize_denoiser": row.quantize}
    result: dict = {"status": "ok"}
    if device.type == "cuda":  # left over from earlier rows: should be ~0, or every later figure is off
        result["allocated_before_gib"] = round(torch.cuda.memory_allocated() / GIB, 2)
        torch.cuda.reset_peak_memory_stats()
    try:
        run_row(row, args, device, scratch, deadline, result)
    except torch.OutOfMemoryError as e:  # `phase` says where: "setup" (building, quantising) or "steps" (training)
        result.update(status="oom", error=str(e).splitlines()[0])
        if device.type == "cuda":
            result["peak_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
    except Exception as e:  # recorded: one failing row must not cost the others their device time
        message = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        # cuBLAS and bitsandbytes report a failed allocation in their own words
        result.update(status="oom" if "out of memory" in message.lower() or "ALLOC_FAILED" in message else "error", error=message)
    gc.collect()  # the failed row's model and optimizer, before the next row allocates
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {**base, **result}


def environment(device: torch.device) -> dict:
    import diffusers

    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version()}
    try:
        import bitsandbytes
        import peft

        env.update(bitsandbytes=bitsandbytes.__version__, peft=peft.__version__)
    except ImportError as e:
        env["missing"] = str(e)
    try:
        env["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        env["commit"] = None  # a copied working tree without .git
    return env


def print_table(rows: list[dict]) -> None:
    def cell(r: dict, key: str) -> object:
        return "" if r.get(key) is None else r[key]

    print(table(["row", "status", "images/s", "s/step", "peak GiB", "peak reserved GiB", "resident GiB", "setup s", "note"],
                [[r["row"], r["status"], cell(r, "images_per_s"), cell(r, "step_s"), cell(r, "peak_gib"), cell(r, "peak_reserved_gib"),
                  cell(r, "resident_gib"),
                  cell(r, "setup_s"), r.get("error") or r.get("note", "")] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (the checks) or cpu (with --tiny: the test)")
    ap.add_argument("--tiny", action="store_true", help="the tiny models' sizes at 64 px instead of the real ones at --side")
    ap.add_argument("--steps", type=int, default=20, help="training steps a row")
    ap.add_argument("--warmup", type=int, default=5, help="steps before the timing starts")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--side", type=int, default=1024, help="square image side in pixels (latents: side / 8)")
    ap.add_argument("--text-tokens", type=int, default=512, help="prompt tokens in the stand-in text cache")
    ap.add_argument("--budget-s", type=float, default=480, help="no row starts after this many seconds")
    ap.add_argument("--only", default="", help="comma-separated row labels or families to run (default: all, in order)")
    ap.add_argument("--out", default="", help="JSON path (default: $OUT/device_checks.json, else ./device_checks.json)")
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be at least 2: one warm-up step and one timed")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # every row's cast to the training dtype warns about fp32 modules it has none of
    out = Path(args.out or Path(os.environ.get("OUT", ".")) / "device_checks.json")
    device = torch.device(args.device)
    started = time.perf_counter()
    deadline = started + args.budget_s
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    rows = [r for r in ROWS if not wanted or r.label in wanted or r.family in wanted]
    report = {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "environment": environment(device), "rows": []}
    with tempfile.TemporaryDirectory() as scratch:
        for row in rows:
            if time.perf_counter() > deadline:
                report["rows"].append({"row": row.label, "family": row.family, "precision": row.precision,
                                       "gradient_checkpointing": row.checkpointing, "quantize_denoiser": row.quantize,
                                       "status": "skipped", "note": f"--budget-s {args.budget_s:g} spent"})
            else:
                report["rows"].append(measure(row, args, device, Path(scratch), deadline))
                print(f"{row.label}: {json.dumps(report['rows'][-1])}", flush=True)
            report["wall_s"] = round(time.perf_counter() - started, 1)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1))
    print()
    print_table(report["rows"])
    print(f"\n{report['environment']}\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
