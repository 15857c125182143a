"""Per-phase time of training steps, for any trainer that runs diffusers, transformers and torch.

    python benchmarks/profile_phases.py --out phases.json --skip 10 --steps 30 -- -m coverforge train CONFIG --out RUN
    PYTHONPATH=../shared/peers/tvshim ../peer-venv/bin/python benchmarks/profile_phases.py --out peer.json -- \
        ../shared/peers/train_text_to_image_lora.py --pretrained_model_name_or_path ...

Wraps the same library functions in whichever trainer runs (the denoiser's forward, Tensor.backward,
AdamW.step, clipping, the VAE and CLIP text encoders, DDPM add_noise, the data loader, logging,
the progress bar, Tensor.item, ...), plus coverforge's own loop helpers when they exist, and
times each call exclusive of the wrapped calls inside it. A step runs from the end of one
optimizer step to the end of the next, so it holds everything the loop does between them; what
no wrapper covers is "other". After `--skip` warm-up steps (caches, first-call allocations) it
records `--steps` steps, writes their per-phase means and the denoiser's call signature to --out, and
ends the process (what comes after is the trainer's saving). Only standard-library imports at the
top: it runs in the peer's venv too. The wrappers cost a few microseconds per call; both sides
pay them alike (a few hundred calls a step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainer_in_process import add_target_argument, run_trainer, target_of  # noqa: E402

PHASES: list[tuple[str, str, str]] = [
    # (module, attribute path, phase)
    ("diffusers", "UNet2DConditionModel.forward", "denoiser forward"),
    ("diffusers", "QwenImageTransformer2DModel.forward", "denoiser forward"),
    ("diffusers", "ZImageTransformer2DModel.forward", "denoiser forward"),
    ("torch", "Tensor.backward", "backward"),
    ("torch.optim", "AdamW.step", "optimizer step"),
    ("torch.optim", "Optimizer.zero_grad", "zero_grad"),
    ("torch.nn.utils", "clip_grad_norm_", "clip grad norm"),
    ("torch.optim.lr_scheduler", "LRScheduler.step", "lr schedule"),
    ("diffusers", "AutoencoderKL.encode", "vae encode"),
    ("diffusers", "AutoencoderKLQwenImage.encode", "vae encode"),
    ("transformers", "CLIPTextModel.forward", "text encoder"),
    ("transformers", "CLIPTextModelWithProjection.forward", "text encoder"),
    ("diffusers", "DDPMScheduler.add_noise", "add_noise"),
    ("torch.utils.data.dataloader", "_BaseDataLoaderIter.__next__", "data loader"),
    ("accelerate", "Accelerator.log", "logging"),
    ("accelerate", "Accelerator.gather", "gather"),
    ("accelerate", "Accelerator.backward", "backward"),
    ("tqdm.std", "tqdm.update", "progress bar"),
    ("tqdm.std", "tqdm.set_postfix", "progress bar"),
    ("torch", "Tensor.item", "tensor.item()"),
    # coverforge's own per-step helpers (absent in the peer's process: skipped there).
    ("coverforge.training.loop", "_next_items", "data loader"),
    ("coverforge.training.loop", "collate", "collate"),
    ("coverforge.models.latent_codec", "LatentCodec.latents", "latent draw"),
    ("coverforge.training.loop", "draw_sigmas", "noise, timesteps"),
    ("coverforge.training.loop", "shift_sigmas", "noise, timesteps"),
    ("coverforge.training.loop", "velocity_target", "target, loss"),
    ("coverforge.training.loop", "sample_noise", "noise, timesteps"),
    ("coverforge.training.loop", "sample_timesteps", "noise, timesteps"),
    ("coverforge.training.loop", "target_for", "target, loss"),
    ("coverforge.training.loop", "diffusion_loss", "target, loss"),
    ("coverforge.cache.text", "CachedConditioner.encode", "text cache read"),
    ("coverforge.training.logs", "MetricsLog.log", "logging"),
]


class PhaseTimer:
    def __init__(self, skip: int, steps: int, out: str):
        self.skip, self.steps, self.out = skip, steps, out
        self.stack: list[float] = []  # per open wrapped call: time spent in wrapped calls inside it
        self.current: dict[str, float] = defaultdict(float)
        self.records: list[tuple[float, dict[str, float]]] = []
        self.last = None
        self.unet_call: dict | None = None
        self.notes: dict = {}

    def wrap(self, phase: str, fn):
        timer = self

        def wrapped(*args, **kwargs):
            if phase == "denoiser forward" and timer.unet_call is None:
                timer.unet_call = describe_call(args, kwargs)
            started = time.perf_counter()
            timer.stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                inner = timer.stack.pop()
                timer.current[phase] += took - inner
                if timer.stack:
                    timer.stack[-1] += took
                elif phase == "optimizer step":
                    timer.step_done(args[0])

        wrapped.__wrapped__ = fn
        return wrapped

    def step_done(self, optimizer) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.records.append((now - self.last, dict(self.current)))
        self.current.clear()
        self.last = now
        if not self.notes:
            self.notes = describe_optimizer(optimizer)
        if len(self.records) >= self.skip + self.steps:
            self.write()
            sys.stdout.flush()
            os._exit(0)  # the rest is the trainer's saving, not steps

    def write(self) -> None:
        window = self.records[self.skip : self.skip + self.steps]
        walls = [w for w, _ in window]
        names = sorted({p for _, phases in window for p in phases})
        means = {p: sum(phases.get(p, 0.0) for _, phases in window) / len(window) for p in names}
        means["other"] = statistics.fmean(walls) - sum(means.values())
        result = {"steps": len(window), "skipped": self.skip, "step_s_mean": statistics.fmean(walls),
                  "step_s_median": statistics.median(walls), "step_s_min": min(walls), "step_s_max": max(walls),
                  "phases_s": means, "unet_call": self.unet_call, "optimizer": self.notes, "threads": torch_threads(),
                  "argv": sys.argv}
        with open(self.out, "w") as f:
            json.dump(result, f, indent=1)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def describe_tensor(t) -> dict:
    import torch

    if not isinstance(t, torch.Tensor):
        return {"type": type(t).__name__, "value": t if isinstance(t, (int, float)) else None}
    channels_last = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return {"shape": list(t.shape), "dtype": str(t.dtype), "contiguous": t.is_contiguous(), "channels_last": channels_last,
            "requires_grad": t.requires_grad}


def describe_value(v):
    if isinstance(v, (list, tuple)) and v and hasattr(v[0], "shape"):
        return [describe_tensor(x) for x in v[:2]]  # e.g. Z-Image's per-sample lists: the first two
    if isinstance(v, dict):
        return {k: describe_tensor(x) for k, x in v.items()}
    return describe_tensor(v) if hasattr(v, "shape") else repr(v)


def describe_call(args, kwargs) -> dict:
    """What the denoiser is called with: shapes, dtypes, layout, and the module's attention processors."""
    unet, rest = args[0], args[1:]
    names = ["sample", "timestep", "encoder_hidden_states"] if type(unet).__name__ == "UNet2DConditionModel" else []
    names += [f"arg{i}" for i in range(len(names), len(rest))]
    call = {name: describe_value(v) for name, v in zip(names, rest)}
    call |= {key: describe_value(v) for key, v in kwargs.items() if v is not None}
    processors = sorted({type(m.processor).__name__ for m in unet.modules() if getattr(m, "processor", None) is not None})
    params = list(unet.parameters())
    call["module"] = {"attn_processors": processors, "training": unet.training, "dtype": str(unet.dtype),
                      "trainable_tensors": sum(p.requires_grad for p in params),
                      "trainable_params": sum(p.numel() for p in params if p.requires_grad),
                      "params": sum(p.numel() for p in params)}
    return call


def describe_optimizer(optimizer) -> dict:
    inner = getattr(optimizer, "optimizer", optimizer)
    d = inner.defaults
    return {"class": type(inner).__name__, "fused": d.get("fused"), "foreach": d.get("foreach"),
            "tensors": sum(len(g["params"]) for g in inner.param_groups)}


def install(timer: PhaseTimer) -> list[str]:
    import importlib

    installed = []
    for module, path, phase in PHASES:
        *owner_path, attr = path.split(".")
        try:
            owner = importlib.import_module(module)
            for name in owner_path:
                owner = getattr(owner, name)
            original = getattr(owner, attr)
        except (ImportError, AttributeError):
            continue  # not in this trainer's process (coverforge's helpers in the peer's venv)
        # Class attributes keep their own descriptor (a function); staticmethods are not wrapped here.
        setattr(owner, attr, timer.wrap(phase, original))
        installed.append(f"{module}.{path}")
    return installed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON of per-phase means")
    ap.add_argument("--skip", type=int, default=10, help="warm-up steps left out")
    ap.add_argument("--steps", type=int, default=30, help="steps recorded")
    add_target_argument(ap)
    args = ap.parse_args()
    target = target_of(ap, args)
    timer = PhaseTimer(args.skip, args.steps, args.out)
    installed = install(timer)
    print(f"profile_phases: wrapped {len(installed)} functions", file=sys.stderr, flush=True)
    run_trainer(target)
    timer.write() if len(timer.records) > args.skip else print("profile_phases: the run ended before the window", file=sys.stderr)


if __name__ == "__main__":
    main()
