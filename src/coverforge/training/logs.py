"""Training logs: metrics.jsonl always, TensorBoard / W&B through Accelerate when asked, and a
smoothed loss plot as PNG (the raw diffusion loss is too noisy to read convergence from)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from coverforge.run_folder import RunFolder


class MetricsLog:
    def __init__(self, run_dir: Path, accelerator, enabled: bool):
        self.path = RunFolder(run_dir).metrics_log
        self.accelerator = accelerator
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.accelerator.trackers:
            self.accelerator.log(values, step=step)

    def read(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines()] if self.path.exists() else []


def cuda_peak(device) -> dict | None:
    """Peak CUDA memory since the last call on `device` (MiB, allocated by tensors and reserved by the
    allocator), then the peaks are reset, so consecutive calls measure consecutive phases; None off CUDA."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    peak = {"allocated_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
            "reserved_mib": round(torch.cuda.max_memory_reserved(device) / 2**20, 1)}
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Debiased exponential moving average, as TensorBoard's smoothing slider."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def plot_loss(records: list[dict], out: Path, size: tuple[int, int] = (640, 360)) -> Path | None:
    """Raw loss in light gray, smoothed loss in blue, step on x; written with Pillow only."""
    points = [(r["step"], r["loss"]) for r in records if "loss" in r]
    if len(points) < 2:
        return None
    steps, losses = zip(*points)
    smoothed = smooth(list(losses))
    w, h, pad = size[0], size[1], 40
    lo, hi = min(losses), max(losses)
    hi = hi if hi > lo else lo + 1e-9
    def xy(s, v):
        return pad + (s - steps[0]) / max(1, steps[-1] - steps[0]) * (w - 2 * pad), h - pad - (v - lo) / (hi - lo) * (h - 2 * pad)
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.rectangle([pad, pad, w - pad, h - pad], outline=(160, 160, 160))
    d.line([xy(s, v) for s, v in zip(steps, losses)], fill=(200, 200, 200), width=1)
    d.line([xy(s, v) for s, v in zip(steps, smoothed)], fill=(30, 90, 200), width=2)
    d.text((pad, 10), f"training loss (smoothed 0.9)  steps {steps[0]}-{steps[-1]}", fill="black")
    d.text((4, pad - 6), f"{hi:.3g}", fill="black")
    d.text((4, h - pad - 6), f"{lo:.3g}", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
