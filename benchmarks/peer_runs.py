"""One whole training process of either side for bench_peer.py: command, wall time, first step, peak RSS.

Both sides are measured the same way: a small wrapper forks and execs the trainer and reports its
wait4 peak RSS (the largest process of its tree; both trainers run one process, data loading in
it), wall time runs from launch to exit, and output is read as it arrives, so the first progress-bar
update (both trainers draw a tqdm bar, which tqdm redraws at most every 0.1 s) is timed too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import tomli_w

from measured_process import MAXRSS_WRAPPER  # fork + exec + wait4: the child's own peak RSS

PYTHON = sys.executable
BATCH, RANK, LR, SEED = 4, 4, 1e-4, 0
UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]  # the peers' LoraConfig target_modules
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
WEIGHT_DECAY = 1e-2  # the text-to-image examples' --adam_weight_decay default (and coverforge's)
FLOW_WEIGHT_DECAY = 1e-4  # the dreambooth examples' default
FLOW_FAMILIES = ("qwen-image", "z-image")
NO_CHECKPOINT = 1_000_000  # neither side saves a checkpoint during the run; both save their LoRA at the end
BAR_LABELS = {"coverforge": b"training", "peer": b"Steps"}  # each trainer's step bar; caching and `datasets` draw others


@dataclasses.dataclass
class Run:
    side: str
    steps: int
    wall_s: float
    peak_mb: float
    first_step_s: float
    """Launch to the end of the first optimizer step: coverforge's own first_step_time; for the peer,
    the first bar update showing n >= 1 steps, less n - 1 steady step times (see bench_peer.py)."""
    updates: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    """Every update of the step bar past step 0, as (seconds from launch, steps shown), timed as it arrived."""
    gpu_peak_mib: float | None = None
    """Most GPU memory in use while it ran, less what was in use before (nvidia-smi; None without a GPU)."""
    cuda_peak: dict = dataclasses.field(default_factory=dict)
    """coverforge's own per-phase CUDA peaks from its process summary ({} for the peer and off CUDA)."""

    @property
    def bar(self) -> tuple[float, int] | None:
        """The first progress-bar update past step 0."""
        return self.updates[0] if self.updates else None


def bar_pattern(label: bytes) -> re.Pattern:
    return re.compile(re.escape(label) + rb":\s*\d+%\|[^|]*\|\s*(\d+)/\d+ \[")  # "Steps:  3%|▎   | 12/310 ["


class GpuMemory:
    """The GPU's memory in use, sampled by `nvidia-smi -lms` every 100 ms while a run lasts: the peak
    less the reading before launch is what the run held (its allocator's reserve and CUDA context),
    measured the same way for both sides. Inert where there is no nvidia-smi or no GPU."""

    def __init__(self) -> None:
        self.baseline = self.peak = None
        self.proc = None
        if shutil.which("nvidia-smi") is None:
            return
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"]
        try:
            self.baseline = float(subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.split()[0])
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            return
        self.peak = self.baseline
        self.proc = subprocess.Popen([*query, "-lms", "100"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.peak = max(self.peak, float(line.split()[0]))
            except (IndexError, ValueError):
                pass

    def stop(self) -> float | None:
        if self.proc is None:
            return None
        time.sleep(0.3)  # a last sample after the run's exit cannot raise the peak; one just before it can
        self.proc.terminate()
        self.thread.join(timeout=5)
        return self.peak - self.baseline


def run_process(cmd: list[str], env: dict, log: Path, bar_label: bytes) -> tuple[int, float, float, float, list[tuple[float, int]], float | None]:
    """Run `cmd`; return (exit code, launch unix time, wall s, peak RSS MB, every update of the bar
    `bar_label` past step 0 as (seconds from launch, steps shown), GPU memory peak MiB or None)."""
    progress = bar_pattern(bar_label)
    maxrss = log.with_suffix(".maxrss")
    gpu = GpuMemory()
    launched_unix, launched = time.time(), time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-S", "-c", MAXRSS_WRAPPER, str(maxrss), *cmd], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    updates, tail = [], b""
    with open(log, "wb") as out:
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            now = time.perf_counter()
            out.write(chunk)
            tail += chunk
            for m in progress.finditer(tail):
                n = int(m.group(1))
                if n >= 1 and (not updates or n > updates[-1][1]):
                    updates.append((now - launched, n))
            tail = tail[-200:]  # a bar line split across two reads still matches (a match seen twice is skipped)
    rc = proc.wait()
    wall = time.perf_counter() - launched
    peak = int(maxrss.read_text()) / 1024 if maxrss.exists() else float("nan")
    return rc, launched_unix, wall, peak, updates, gpu.stop()


def child_env(threads: int) -> dict:
    """Offline, quiet; OMP_NUM_THREADS=threads where given (0: torch's own choice, as on a GPU machine)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def coverforge_config(model: Path, family: str, dataset: Path, resolution: int, steps: int, text_lora: bool, cache_dir: Path,
                      precision: str = "no", settings: dict | None = None) -> dict:
    """coverforge settings that do the peer's maths; what still differs is in bench_peer.DIFFERENCES.
    `settings` ({"run": {"compile_unet": True}}) adds coverforge options the peer has no counterpart for."""
    train = {"recipe": "lora", "train_text_encoder": text_lora, "train_text_encoder_2": text_lora and family == "sdxl",
             "lr_unet": LR, "lr_text_encoder": LR, "lr_text_encoder_2": LR, "lr_schedule": "constant", "warmup_ratio": 0.0,
             "max_grad_norm": 1.0, "mixed_precision": precision, "batch_size": BATCH, "max_steps": steps, "seed": SEED}
    if family in FLOW_FAMILIES:
        # The dreambooth peers' defaults: weight decay 1e-4, --weighting_scheme none (uniform noise levels).
        train |= {"weight_decay": FLOW_WEIGHT_DECAY, "flow_weighting": "uniform"}
    else:
        train |= {"weight_decay": WEIGHT_DECAY}
    values = {
        "model": {"path": str(model), "family": family},
        "data": {"dataset": str(dataset), "resolution": resolution},
        "lora": {"rank": RANK, "alpha": float(RANK), "init": "gaussian", "unet_targets": UNET_TARGETS, "text_targets": TEXT_TARGETS},
        "train": train,
        "run": {"cache_dir": str(cache_dir), "checkpoint_every": NO_CHECKPOINT, "checkpoints_total_limit": 1},
    }
    for section, options in (settings or {}).items():
        values[section] = {**values.get(section, {}), **options}
    return values


def run_coverforge(folder: Path, model: Path, family: str, dataset: Path, resolution: int, steps: int, text_lora: bool, threads: int,
                   precision: str = "no", settings: dict | None = None) -> Run:
    """`coverforge train` in a fresh folder (its latent and text caches are built inside the run, as on a first run)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = folder / "config.toml"
    config.write_text(tomli_w.dumps(coverforge_config(model, family, dataset, resolution, steps, text_lora, folder / "cache",
                                                      precision, settings)))
    log = folder / "train.log"
    rc, launched, wall, peak, updates, gpu = run_process([PYTHON, "-m", "coverforge", "train", str(config), "--out", str(folder / "run")],
                                                         child_env(threads), log, BAR_LABELS["coverforge"])
    if rc:
        raise RuntimeError(f"coverforge train exited {rc}; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
    summary = json.loads((folder / "run" / "logs" / "process-0.json").read_text())
    if summary["global_images"] != steps * BATCH:
        raise RuntimeError(f"coverforge trained {summary['global_images']} images, expected {steps * BATCH}; see {log}")
    return Run("coverforge", steps, wall, peak, summary["first_step_time"] - launched, updates, gpu, summary.get("cuda_peak", {}))


def peer_command(python: Path, script: Path, model: Path, dataset: Path, resolution: int, steps: int, text_lora: bool, out: Path,
                 precision: str = "no") -> list[str]:
    """The example's command line. The dreambooth trainers (Qwen-Image, Z-Image) read the same imagefolder
    through --dataset_name, need an --instance_prompt (the captions replace it), take --lora_alpha (the
    text-to-image examples set alpha = rank) and run with --cache_latents, their own speed option."""
    dreambooth = script.name.startswith("train_dreambooth")
    data = ["--dataset_name" if dreambooth else "--train_data_dir", str(dataset / "train")]
    cmd = [str(python), str(script), "--pretrained_model_name_or_path", str(model), *data,
           "--caption_column", "text", "--image_column", "image", "--resolution", str(resolution),
           "--train_batch_size", str(BATCH), "--max_train_steps", str(steps), "--learning_rate", str(LR),
           "--lr_scheduler", "constant", "--seed", str(SEED), "--dataloader_num_workers", "0", "--mixed_precision", precision,
           "--checkpointing_steps", str(NO_CHECKPOINT), "--rank", str(RANK), "--output_dir", str(out / "run"),
           "--cache_dir", str(out / "datasets-cache")]
    if dreambooth:
        cmd += ["--instance_prompt", "a book cover", "--lora_alpha", str(RANK), "--lr_warmup_steps", "0", "--cache_latents"]
    return cmd + ["--train_text_encoder"] * text_lora


def run_peer(folder: Path, python: Path, script: Path, tvshim: Path | None, model: Path, dataset: Path, resolution: int, steps: int,
             text_lora: bool, threads: int, precision: str = "no") -> Run:
    """The diffusers example in a fresh folder (its `datasets` Arrow cache too, as on a first run)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = folder / "train.log"
    env = child_env(threads)
    if tvshim is not None:  # where torchvision cannot import (this CPU machine); a GPU machine's own torchvision works
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tvshim), env.get("PYTHONPATH", "")) if p)
    rc, _, wall, peak, updates, gpu = run_process(peer_command(python, script, model, dataset, resolution, steps, text_lora, folder, precision),
                                                  env, log, BAR_LABELS["peer"])
    if rc:
        raise RuntimeError(f"{script.name} exited {rc}; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
    shown = [int(m.group(1)) for m in bar_pattern(BAR_LABELS["peer"]).finditer(log.read_bytes())]
    if not updates or max(shown) != steps:
        raise RuntimeError(f"{script.name}: its step bar in {log} shows {max(shown, default=0)} of {steps} steps")
    return Run("peer", steps, wall, peak, float("nan"), updates, gpu)


def run_profiled(side: str, cmd: list[str], env: dict, log: Path, out: Path) -> dict:
    """A trainer run under one of the profilers (profile_phases.py, profile_memory.py): its JSON report from `out`."""
    with open(log, "wb") as f:
        rc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc or not out.is_file():
        raise RuntimeError(f"{side} exited {rc} without a profile; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
    return json.loads(out.read_text())
