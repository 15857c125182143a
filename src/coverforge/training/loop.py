"""`train(config, run_dir)`: the one training loop for every recipe and family.

Setup (`_setup`) builds models, recipe, data, optimizer and Accelerate; the loop below reads on
one screen; saving, validation and logging are helpers it calls by name.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from coverforge.config import Config, diff_configs, load_config, to_toml
from coverforge.data.layout import load_records
from coverforge.errors import CoverforgeError
from coverforge.sampling.generate import Generator
from coverforge.text.conditioning import TextConditioner
from coverforge.training import checkpoint as ckpt
from coverforge.training.dataset import BucketSampler, CoverDataset, collate
from coverforge.training.diffusion import diffusion_loss, min_snr_weights, sample_noise, sample_timesteps, target_for
from coverforge.training.logs import MetricsLog, plot_loss
from coverforge.training.recipe import apply_recipe, build_parts, load_trained_state, make_lr_schedule, make_optimizer, trained_state
from coverforge.training.saving import save_final
from coverforge.training.validation import sample_validation

MAX_CONSECUTIVE_SKIPS = 20  # on_nonfinite='skip': past this many in a row, the run has diverged

# Fields that may change when resuming: they do not change what the steps so far computed.
RESUMABLE_CHANGES = {"train.max_steps", "train.max_minutes", "train.log_with", "train.log_every", "train.checkpoint_every", "train.checkpoints_total_limit", "data.num_workers"}


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    losses: list[float] = field(default_factory=list)
    stopped_early: str = ""


class _StopRequest:
    """SIGINT/SIGTERM finish the current step, checkpoint, and exit cleanly."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, _frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def train(cfg: Config, run_dir: str | Path, resume: str | None = None, progress: bool = True) -> TrainResult:
    s = _setup(cfg, Path(run_dir), resume)
    t, acc = cfg.train, s.accelerator
    result = TrainResult(s.run_dir, s.step)
    batches = iter(s.sampler)
    bar = _progress_bar(progress and acc.is_main_process, s.step, t.max_steps)
    started, seen, grad_norm, skipped = time.perf_counter(), 0, 0.0, 0
    with _StopRequest() as stop:
        while s.step < t.max_steps:
            with acc.accumulate(*s.modules):
                batch = collate([s.dataset[i] for i in next(batches)])
                s.consumed += 1
                loss = _loss(s, batch)
                if not torch.isfinite(loss):
                    if t.on_nonfinite == "stop":
                        raise CoverforgeError(
                            f"loss is {loss.item()} at step {s.step + 1}: likely an fp16 overflow (try "
                            "train.mixed_precision='bf16' or 'no') or a learning rate too high; the last good "
                            f"checkpoint is in {s.run_dir / 'checkpoints'}"
                        )
                    skipped += 1
                    if skipped > MAX_CONSECUTIVE_SKIPS:
                        raise CoverforgeError(f"{skipped} non-finite losses in a row up to step {s.step + 1}: the run has diverged")
                    s.optimizer.zero_grad(set_to_none=True)
                    continue
                skipped = 0
                acc.backward(loss)
                if acc.sync_gradients and t.max_grad_norm > 0:
                    grad_norm = acc.clip_grad_norm_([p for part in s.parts for p in part.parameters()], t.max_grad_norm)
                s.optimizer.step()
                s.lr_schedule.step()
                s.optimizer.zero_grad(set_to_none=True)
            seen += batch["pixels"].shape[0] * acc.num_processes
            if not acc.sync_gradients:
                continue
            s.step += 1
            if s.ema is not None:
                s.ema.step([p for part in s.parts for p in part.parameters()])
            loss_value = acc.gather(loss.detach().reshape(1)).mean().item()
            result.losses.append(loss_value)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if s.step % t.log_every == 0 or s.step == t.max_steps:
                lrs = {f"lr/{g['name']}": g["lr"] for g in s.optimizer.param_groups}
                s.log.log(s.step, {"loss": loss_value, "grad_norm": float(grad_norm), "images_per_s": seen / (time.perf_counter() - started), **lrs})
            if cfg.sample.every and s.step % cfg.sample.every == 0:
                _validate(s, cfg)
            out_of_time = bool(t.max_minutes) and time.perf_counter() - started > t.max_minutes * 60
            if s.step % t.checkpoint_every == 0 or s.step == t.max_steps or stop.signal or out_of_time:
                _save(s, acc)
            if out_of_time:
                acc.print(f"\ntime budget of {t.max_minutes} min reached at step {s.step}")
                break
            if stop.signal:
                result.stopped_early = stop.signal
                acc.print(f"\n{stop.signal}: stopped after step {s.step}; resume with --resume latest")
                break
    bar.close()
    _write_process_summary(s)
    acc.wait_for_everyone()  # without this a process can die at exit while another still writes
    if not result.stopped_early:
        _validate(s, cfg)
        if acc.is_main_process:
            if s.ema is not None:
                s.ema.copy_to([p for part in s.parts for p in part.parameters()])
            save_final(s.parts_obj, s.parts, cfg, s.run_dir, acc)
            plot_loss(s.log.read(), s.run_dir / "logs" / "loss.png")
    acc.wait_for_everyone()
    acc.end_training()
    result.step = s.step
    return result


def _loss(s, batch) -> torch.Tensor:
    """Noise a batch, predict, and score the prediction against the recipe's target."""
    t, acc = s.cfg.train, s.accelerator
    pixels = batch["pixels"].to(acc.device)
    with torch.no_grad():
        if s.parts_obj.vae is not None:
            dist = s.parts_obj.vae.encode(pixels.to(s.parts_obj.vae.dtype)).latent_dist
            latents = dist.sample(generator=s.noise_gen) * s.parts_obj.vae.config.scaling_factor
        else:
            latents = pixels
    prompts = [("" if torch.rand((), generator=s.noise_gen).item() < s.cfg.data.caption_dropout else p) for p in batch["prompts"]]
    cond = s.conditioner.encode(prompts)
    noise = sample_noise(latents, s.noise_gen, t.noise_offset)
    timesteps = sample_timesteps(latents.shape[0], s.noise_gen, t.timestep_min, min(t.timestep_max, s.noise_scheduler.config.num_train_timesteps), acc.device)
    noisy = s.noise_scheduler.add_noise(latents, noise, timesteps)
    added = None
    if cond.pooled is not None:
        time_ids = torch.cat([batch["original_size"], batch["crop_top_left"], batch["target_size"]], dim=1)
        added = {"text_embeds": cond.pooled, "time_ids": time_ids.to(acc.device, cond.pooled.dtype)}
    pred = s.unet(noisy, timesteps, encoder_hidden_states=cond.hidden, added_cond_kwargs=added, return_dict=False)[0]
    target = target_for(s.noise_scheduler, latents, noise, timesteps, s.prediction_type)
    weights = min_snr_weights(s.noise_scheduler, timesteps, t.min_snr_gamma, s.prediction_type) if t.min_snr_gamma else None
    return diffusion_loss(pred, target, weights)


@dataclass
class _Setup:
    cfg: Config
    run_dir: Path
    accelerator: object
    parts_obj: object
    parts: list
    modules: list
    unet: torch.nn.Module
    conditioner: TextConditioner
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


def _setup(cfg: Config, run_dir: Path, resume: str | None) -> _Setup:
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers import DDPMScheduler

    t = cfg.train
    if not cfg.data.dataset:
        raise CoverforgeError("data.dataset is empty: point it at a folder written by `coverforge prepare`")
    records = load_records(cfg.data.dataset, cfg.data.split)
    _check_writable(run_dir)
    resume_from = None
    if resume:
        resume_from = ckpt.resolve_checkpoint(run_dir, resume)
        _check_resumable(cfg, resume_from)
    project = ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs"))
    acc = Accelerator(mixed_precision=t.mixed_precision, gradient_accumulation_steps=t.grad_accum,
                      log_with=_trackers(t.log_with), project_config=project)
    set_seed(t.seed)
    parts_obj = build_parts(cfg)
    parts = apply_recipe(parts_obj, cfg)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(t.mixed_precision, torch.float32)
    for m in (parts_obj.unet, parts_obj.vae, *parts_obj.text_encoders):
        if m is not None:
            # Frozen parts run in the mixed-precision dtype on GPU; trained ones stay fp32.
            frozen = all(not p.requires_grad for p in m.parameters())
            dtype = weight_dtype if frozen and acc.device.type != "cpu" else torch.float32
            m.to(acc.device) if m.dtype == dtype else m.to(acc.device, dtype=dtype)
    noise_scheduler = DDPMScheduler.from_config(parts_obj.scheduler_config)
    prediction_type = t.prediction_type or noise_scheduler.config.prediction_type
    optimizer = make_optimizer(t, parts)
    lr_schedule = make_lr_schedule(t, optimizer)
    prepared = acc.prepare(*[p.module for p in parts], optimizer, lr_schedule)
    modules, optimizer, lr_schedule = list(prepared[: len(parts)]), prepared[-2], prepared[-1]
    by_name = {p.name: m for p, m in zip(parts, modules)}
    unet = by_name.get("unet", parts_obj.unet)
    encoders = [by_name.get(n, getattr(parts_obj, n)) for n in ("text_encoder", "text_encoder_2") if getattr(parts_obj, n) is not None]
    tokenizers = [tk for tk in (parts_obj.tokenizer, parts_obj.tokenizer_2) if tk is not None]
    conditioner = TextConditioner(parts_obj.family, tokenizers, encoders, cfg.text)
    step_size = 8 * (2 ** (len(parts_obj.vae.config.block_out_channels) - 1) if parts_obj.vae is not None else 1)
    dataset = CoverDataset(records, cfg.data.resolution, cfg.data.buckets, step=max(8, step_size), random_flip=cfg.data.random_flip)
    sampler = BucketSampler(dataset.buckets, t.batch_size, seed=t.seed, rank=acc.process_index, world=acc.num_processes)
    ema = None
    if t.ema_decay:
        from diffusers.training_utils import EMAModel

        ema = EMAModel([p for part in parts for p in part.parameters()], decay=t.ema_decay)
    s = _Setup(cfg, run_dir, acc, parts_obj, parts, modules, unet, conditioner, noise_scheduler, prediction_type,
               optimizer, lr_schedule, dataset, sampler, torch.Generator().manual_seed(t.seed + acc.process_index),
               MetricsLog(run_dir, acc, acc.is_main_process), ema)
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(to_toml(cfg))
        if acc.log_with:
            acc.init_trackers("coverforge")
    if resume_from is not None:
        _restore(s, resume_from)
    return s


def _save(s: _Setup, acc) -> None:
    state = {
        "step": s.step,
        "consumed": s.consumed,
        "sampler": s.sampler.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "lr_schedule": s.lr_schedule.state_dict(),
        "ema": s.ema.state_dict() if s.ema is not None else None,
        "rng": ckpt.rng_state(s.noise_gen),
    }
    if acc.is_main_process:
        ckpt.save_checkpoint(s.run_dir, s.step, trained_state(s.parts), state, to_toml(s.cfg), s.cfg.train.checkpoints_total_limit)
    acc.wait_for_everyone()


def _restore(s: _Setup, path: Path) -> None:
    trained, state, _ = ckpt.load_checkpoint(path)
    load_trained_state(s.parts, trained)
    s.optimizer.load_state_dict(state["optimizer"])
    s.lr_schedule.load_state_dict(state["lr_schedule"])
    if s.ema is not None and state["ema"] is not None:
        s.ema.load_state_dict(state["ema"])
    s.step, s.consumed = int(state["step"]), int(state["consumed"])
    s.sampler.load_state_dict(state["sampler"])
    per_epoch = len(s.sampler.epoch_batches(0))
    # The sampler's own position may run ahead of what the loop consumed; recompute from the count.
    s.sampler.epoch, s.sampler.position = divmod(s.consumed, per_epoch)
    ckpt.set_rng_state(state["rng"], s.noise_gen)


def _check_resumable(cfg: Config, path: Path) -> None:
    saved = load_config(path / "config.toml")
    changed = [f for f in diff_configs(saved, cfg) if f not in RESUMABLE_CHANGES and not f.startswith("sample.")]
    if changed:
        raise CoverforgeError(f"cannot resume from {path}: the config differs in {', '.join(changed)} (only max steps, logging, checkpoint and sampling settings may change)")


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise CoverforgeError(f"cannot write to the run folder {run_dir}: {e.strerror}") from None


def _validate(s: _Setup, cfg: Config) -> None:
    if not cfg.sample.prompts or not s.accelerator.is_main_process:
        return
    unet = s.accelerator.unwrap_model(s.unet)
    for m in (unet, *(spec.encoder for spec in s.conditioner.specs)):
        m.eval()
    gen = Generator(unet, s.conditioner, s.parts_obj.scheduler_config, s.parts_obj.vae, s.parts_obj.family == "sdxl")
    sample_validation(gen, cfg, s.run_dir / "samples", s.step)
    for part in s.parts:
        part.module.train()


def _write_process_summary(s: _Setup) -> None:
    """Per process: steps, local images and a fingerprint of the trained weights. In a
    data-parallel run every process must end with the same fingerprint."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for key, tensor in sorted(trained_state(s.parts).items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    acc = s.accelerator
    summary = {"process": acc.process_index, "processes": acc.num_processes, "step": s.step, "batches": s.consumed,
               "local_images": s.consumed * s.cfg.train.batch_size,
               "global_images": s.consumed * s.cfg.train.batch_size * acc.num_processes, "weights_sha256": digest.hexdigest()}
    folder = s.run_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"process-{acc.process_index}.json").write_text(json.dumps(summary, indent=1) + "\n")


def _trackers(name: str) -> list[str] | None:
    if name == "none":
        return None
    try:
        __import__(name)
    except ImportError:
        raise CoverforgeError(f"train.log_with = {name!r} needs the {name} package: pip install {name}") from None
    return [name]


def _progress_bar(enabled: bool, start: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, desc="training", unit="step", dynamic_ncols=True)
