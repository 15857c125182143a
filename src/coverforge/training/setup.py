"""Everything the training loop needs, built from the config, and the run state it saves.

`setup_run` loads or builds the model, applies the recipe, prepares data, optimizer, schedule and
Accelerate, and restores a checkpoint when resuming; `save_state` / `restore_state` write and
read the complete training state (see checkpoint.py for the atomic file layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from coverforge.cache.build import build_caches
from coverforge.config import RESUMABLE, Config, diff_configs, load_config, to_toml
from coverforge.errors import CoverforgeError, require_writable
from coverforge.models.families import family_of
from coverforge.models.grid import size_multiple
from coverforge.models.latent_codec import LatentCodec
from coverforge.run_folder import RunFolder
from coverforge.text.conditioners import make_conditioner
from coverforge.training import checkpoint as ckpt
from coverforge.training.dataset import BucketSampler, CoverDataset
from coverforge.training.inputs import config_records, prepare_inputs
from coverforge.training.logs import MetricsLog
from coverforge.training.offload import Offload, idle_parts
from coverforge.training.recipe import load_trained_state, make_lr_schedule, make_optimizer, trained_state
from coverforge.training.switches import autocast_dtype, set_lora_input_casting, training_forward

@dataclass
class RunState:
    cfg: Config
    run_dir: Path
    accelerator: object
    parts_obj: object
    parts: list
    modules: list
    unet: torch.nn.Module
    conditioner: object
    """`TextConditioner` or `LLMConditioner` (text/conditioners.py)."""
    noise_scheduler: object
    prediction_type: str
    optimizer: object
    lr_schedule: object
    dataset: CoverDataset
    sampler: BucketSampler
    noise_gen: torch.Generator
    log: MetricsLog
    ema: object = None
    step: int = 0
    consumed: int = 0
    params: list = None
    """Every trained tensor, listed once: EMA uses it each step."""
    train_text: object = None
    """What training encodes prompts with: the text cache when the encoders are frozen, else `conditioner`."""
    first_step_time: float = 0.0
    """Unix time of this process's first optimizer step (start-up cost = this - process start)."""
    saved_step: int = -1
    """The step of the last checkpoint this run wrote (or resumed from)."""
    empty_batches: int = 0
    """Batches in a row in which no cover decoded."""
    codec: object = None
    """Pixels or cached posteriors -> training latents (models/latent_codec.LatentCodec); None in pixel space."""
    offload: object = None
    """Frozen parts parked off the device during the steps (training/offload.Offload); validation restores them."""
    autocast_dtype: torch.dtype | None = None
    """What the steps' autocast computes in (switches.autocast_dtype); None without autocast."""
    unet_forward: object = None
    """What the steps call the UNet through (switches.training_forward): a replayed trace or the module."""
    cuda_peaks: dict = field(default_factory=dict)
    """Peak CUDA memory per phase ("setup": models and caches, "steps"), from logs.cuda_peak; empty off CUDA."""

    def __post_init__(self) -> None:
        self.params = [p for part in self.parts for p in part.parameters()]

    @property
    def clipped(self) -> list:
        """The tensors whose gradients clipping reads: FlatAdamW's one flat tensor per group (their
        gradients are every trained tensor's), else the trained tensors themselves."""
        return getattr(getattr(self.optimizer, "optimizer", self.optimizer), "flat_tensors", self.params)

    @property
    def run(self) -> RunFolder:
        return RunFolder(self.run_dir)


def setup_run(cfg: Config, run_dir: Path, resume: str | None) -> RunState:
    import diffusers
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    t = cfg.train
    records = config_records(cfg)
    if len(records) < t.batch_size:
        raise CoverforgeError(f"{cfg.data.dataset}/{cfg.data.split} holds {len(records)} images, fewer than train.batch_size = {t.batch_size}")
    require_writable(run_dir, "to the run folder")
    resume_from = None
    if resume:
        resume_from = ckpt.resolve_checkpoint(run_dir, resume)
        _check_resumable(cfg, resume_from)
    project = ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(RunFolder(run_dir).logs))
    acc = Accelerator(mixed_precision=t.mixed_precision, gradient_accumulation_steps=t.grad_accum,
                      log_with=_trackers(cfg.run.log_with), project_config=project)
    set_seed(t.seed)
    inputs = prepare_inputs(cfg, acc.device)
    parts_obj, parts, dataset = inputs.parts, inputs.trained, inputs.dataset
    family = family_of(parts_obj.family)
    noise_scheduler = getattr(diffusers, family.training_scheduler).from_config(parts_obj.scheduler_config)
    prediction_type = "flow" if family.has_flow else noise_scheduler.config.prediction_type
    if family.has_flow:
        _check_flow_settings(cfg, parts_obj.family)
    _check_free_space(run_dir, parts, cfg.run.checkpoints_total_limit)
    optimizer = make_optimizer(t, parts, acc.num_processes)
    lr_schedule = make_lr_schedule(t, optimizer)
    # The LR schedule stays outside Accelerate: its wrapper steps the schedule once per process
    # per optimizer step (N times too fast on N processes); the loop steps it once per step.
    prepared = acc.prepare(*[p.module for p in parts], optimizer)
    modules, optimizer = list(prepared[: len(parts)]), prepared[-1]
    low = autocast_dtype(acc)
    if low is not None:
        set_lora_input_casting(modules, False)
    by_name = {p.name: m for p, m in zip(parts, modules)}
    unet = by_name.get("unet", parts_obj.unet)
    encoders = [by_name.get(n, getattr(parts_obj, n)) for n in ("text_encoder", "text_encoder_2") if getattr(parts_obj, n) is not None]
    tokenizers = [tk for tk in (parts_obj.tokenizer, parts_obj.tokenizer_2) if tk is not None]
    conditioner = make_conditioner(parts_obj.family, tokenizers, encoders, cfg.text)
    # Checked before the caches are built (minutes) and before the first step: a batch size no
    # bucket fills, or validation samples of a size this model cannot draw.
    sampler = BucketSampler(dataset.buckets, t.batch_size, seed=t.seed, rank=acc.process_index, world=acc.num_processes)
    _check_sample_size(cfg, parts_obj)
    train_text = conditioner
    codec = LatentCodec.for_parts(parts_obj)
    text_cached = False
    if cfg.run.cache:
        cached_text, report = build_caches(cfg, codec, conditioner, dataset, acc, inputs.text_frozen)
        train_text = cached_text or conditioner
        text_cached = cached_text is not None
        if cached_text is None and hasattr(conditioner, "remember_tokens"):
            conditioner.remember_tokens()  # trained CLIP encoders: the embeddings change, the token windows do not
        for line in report.lines():
            acc.print(f"cache {line}")
    offload = Offload(idle_parts(parts_obj, cfg, text_cached, dataset.latents is not None), acc.device)
    offload.park()
    s = RunState(cfg, run_dir, acc, parts_obj, parts, modules, unet, conditioner, noise_scheduler, prediction_type,
               optimizer, lr_schedule, dataset, sampler, torch.Generator().manual_seed(t.seed + acc.process_index),
               MetricsLog(run_dir, acc, acc.is_main_process), train_text=train_text, codec=codec, offload=offload,
               autocast_dtype=low, unet_forward=training_forward(unet, cfg, parts_obj.family, acc.num_processes, low, acc.device))
    if t.ema_decay:
        from diffusers.training_utils import EMAModel

        s.ema = EMAModel(s.params, decay=t.ema_decay)
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        RunFolder(run_dir).config.write_text(to_toml(cfg))
        if acc.log_with:
            acc.init_trackers("coverforge")
    if resume_from is not None:
        restore_state(s, resume_from)
    return s


def _check_sample_size(cfg: Config, parts_obj) -> None:
    """The end-of-run samples' size, set in pixels (0 = the model's native size, always drawable)."""
    m = size_multiple(parts_obj)
    for name in ("width", "height"):
        value = getattr(cfg.sample, name)
        if value % m:
            raise CoverforgeError(f"sample.{name} = {value} cannot be drawn by this model: it must be a multiple of {m} (the "
                                  f"end-of-run samples need it); e.g. sample.{name} = {max(m, round(value / m) * m)}, or 0 for the native size")


def _check_flow_settings(cfg: Config, family: str) -> None:
    """Settings of the DDPM path that a flow-matching model has no use for: one line, not a silent no-op."""
    t, default = cfg.train, type(cfg.train)()
    for name in ("prediction_type", "min_snr_gamma", "snr_weighting", "noise_offset", "timestep_min", "timestep_max"):
        if getattr(t, name) != getattr(default, name):
            raise CoverforgeError(f"train.{name} = {getattr(t, name)!r} applies to SD's noise schedule; the {family} model trains by "
                                  "flow matching: remove it (train.flow_weighting, flow_logit_mean/std and flow_shift set its timesteps)")


def save_state(s: RunState, acc) -> None:
    from accelerate.utils import gather_object

    # Every process's own generators (dropout, data workers, noise): process 0's alone would give
    # every process the same draws after a resume.
    rngs = gather_object([ckpt.rng_state(s.noise_gen)])
    state = {
        "step": s.step,
        "consumed": s.consumed,
        "sampler": s.sampler.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "lr_schedule": s.lr_schedule.state_dict(),
        "ema": s.ema.state_dict() if s.ema is not None else None,
        "rng": rngs,
        "grad_scaler": acc.scaler.state_dict() if getattr(acc, "scaler", None) is not None else None,
    }
    if acc.is_main_process:
        ckpt.save_checkpoint(s.run_dir, s.step, trained_state(s.parts), state, to_toml(s.cfg), s.cfg.run.checkpoints_total_limit)
    s.saved_step = s.step
    acc.wait_for_everyone()


def restore_state(s: RunState, path: Path) -> None:
    trained, state, _ = ckpt.load_checkpoint(path)
    load_trained_state(s.parts, trained)
    s.optimizer.load_state_dict(state["optimizer"])
    s.lr_schedule.load_state_dict(state["lr_schedule"])
    if s.ema is not None and state["ema"] is not None:
        s.ema.load_state_dict(state["ema"])
        s.ema.to(s.accelerator.device)  # loaded on the CPU; the trained weights may be on a GPU
    if state.get("grad_scaler") and getattr(s.accelerator, "scaler", None) is not None:
        s.accelerator.scaler.load_state_dict(state["grad_scaler"])
    s.step, s.consumed = int(state["step"]), int(state["consumed"])
    s.sampler.load_state_dict(state["sampler"])
    per_epoch = len(s.sampler.epoch_batches(0))
    # The sampler's own position may run ahead of what the loop consumed; recompute from the count.
    s.sampler.epoch, s.sampler.position = divmod(s.consumed, per_epoch)
    ckpt.set_rng_state(_own_rng(state["rng"], s.accelerator), s.noise_gen)
    s.saved_step = s.step


def _own_rng(saved: dict | list[dict], acc) -> dict:
    """This process's generator states (checkpoints before per-process states held process 0's)."""
    if isinstance(saved, dict):
        return saved
    if len(saved) != acc.num_processes:
        acc.print(f"the checkpoint holds random states of {len(saved)} processes, this run has {acc.num_processes}: "
                  "reusing them round-robin (the run continues correctly but not bit for bit)")
    return saved[acc.process_index % len(saved)]


def _check_resumable(cfg: Config, path: Path) -> None:
    saved = load_config(path / ckpt.CONFIG)
    changed = [f for f in diff_configs(saved, cfg) if f not in RESUMABLE and not f.startswith("sample.")]
    if changed:
        raise CoverforgeError(f"cannot resume from {path}: the config differs in {', '.join(changed)} (only train.max_steps, "
                              "the [run] and the [sample] sections may change)")


def _check_free_space(run_dir: Path, parts, keep: int) -> None:
    """Refuse to start when the disk cannot hold the checkpoints: weights + two Adam moments each,
    for `keep` checkpoints plus the one being written, plus the final artefact."""
    import shutil

    trained = sum(p.numel() * 4 for part in parts for p in part.parameters())
    needed = trained * 3 * (keep + 1) + trained
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise CoverforgeError(f"{run_dir} has {free / 2**30:.2f} GiB free but the checkpoints need about {needed / 2**30:.2f} GiB; "
                              "free space or lower run.checkpoints_total_limit")


def write_process_summary(s: RunState) -> None:
    """Per process: steps, local images and a fingerprint of the trained weights. In a
    data-parallel run every process must end with the same fingerprint."""
    import json

    from coverforge.hashing import tensors_sha256

    acc = s.accelerator
    summary = {"process": acc.process_index, "processes": acc.num_processes, "step": s.step, "batches": s.consumed,
               "local_images": s.consumed * s.cfg.train.batch_size,
               "global_images": s.consumed * s.cfg.train.batch_size * acc.num_processes, "weights_sha256": tensors_sha256(trained_state(s.parts)), "failed_images": s.dataset.failed,
               "process_start_time": _process_start_time(), "first_step_time": s.first_step_time, "cuda_peak": {k: v for k, v in s.cuda_peaks.items() if v}}
    folder = s.run.logs
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"process-{acc.process_index}.json").write_text(json.dumps(summary, indent=1) + "\n")


def _process_start_time() -> float:
    """Unix time this process started (Linux /proc; 0.0 where unknown), for start-up measurements."""
    import os

    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return 0.0


def _trackers(name: str) -> list[str] | None:
    if name == "none":
        return None
    try:
        __import__(name)
    except ImportError:
        raise CoverforgeError(f"run.log_with = {name!r} needs the {name} package: pip install {name}") from None
    return [name]
