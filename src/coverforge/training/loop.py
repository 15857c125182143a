"""`train(config, run_dir)`: the one training loop for every recipe and family.

Setup (`setup.setup_run`) builds models, recipe, data, optimizer and Accelerate; the loop below reads on
one screen; saving, validation and logging are helpers it calls by name.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from coverforge.config import Config
from coverforge.errors import CoverforgeError
from coverforge.sampling.generate import Generator
from coverforge.training.dataset import batch_loader, collate
from coverforge.training.diffusion import SNR_WEIGHTINGS, diffusion_loss, sample_noise, sample_timesteps, target_for
from coverforge.training.flow_matching import draw_sigmas, noisy_latents, shift_sigmas, velocity_target
from coverforge.training.logs import cuda_peak, plot_loss
from coverforge.training.saving import save_final
from coverforge.training.setup import RunState, save_state, setup_run, write_process_summary
from coverforge.training.switches import lora_inputs_cast
from coverforge.training.validation import sample_validation
from coverforge.models.families import family_of

MAX_CONSECUTIVE_SKIPS = 20  # on_nonfinite='skip': past this many in a row, the run has diverged
MAX_EMPTY_BATCHES = 50  # batches in a row where no cover decoded (or a whole epoch's, if fewer): stop

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
    s = setup_run(cfg, Path(run_dir), resume)
    t, acc = cfg.train, s.accelerator
    s.cuda_peaks["setup"] = cuda_peak(acc.device)  # models and caches; the steps' peak is read at the end
    result = TrainResult(s.run_dir, s.step)
    batches = batch_loader(s.dataset, s.sampler, s.cfg.run.num_workers)
    bar = _progress_bar(progress and acc.is_main_process, s.step, t.max_steps)
    started, seen, grad_norm, skipped, micro = time.perf_counter(), 0, 0.0, 0, 0
    with _StopRequest() as stop:
        while s.step < t.max_steps:
            if stop.signal and micro == 0 and acc.num_processes == 1:
                break  # between steps, e.g. while every batch comes back empty
            items = _next_items(s, batches)
            if not items:
                continue
            s.noise_gen.manual_seed(batch_seed(t.seed, s.consumed - 1, acc.process_index, acc.num_processes))
            with acc.accumulate(*s.modules):
                loss = _loss(s, collate(items))
                if not torch.isfinite(loss):
                    if t.on_nonfinite == "stop":
                        raise CoverforgeError(
                            f"loss is {loss.item()} at step {s.step + 1}: likely an fp16 overflow (try "
                            "train.mixed_precision='bf16' or 'no') or a learning rate too high; the last good "
                            f"checkpoint is in {s.run.checkpoints}"
                        )
                    skipped += 1
                    if skipped > MAX_CONSECUTIVE_SKIPS:
                        raise CoverforgeError(f"{skipped} non-finite losses in a row up to step {s.step + 1}: the run has diverged")
                    s.optimizer.zero_grad(set_to_none=True)
                    continue
                skipped = 0
                acc.backward(loss)
                if acc.sync_gradients and t.max_grad_norm > 0:
                    grad_norm = acc.clip_grad_norm_(s.clipped, t.max_grad_norm)
                s.optimizer.step()
                # The schedule is ours, not Accelerate's: its wrapper steps once per process.
                if acc.sync_gradients and not s.optimizer.step_was_skipped:
                    s.lr_schedule.step()
                s.optimizer.zero_grad(set_to_none=True)
            seen += len(items) * acc.num_processes
            step_loss = loss.detach() if micro == 0 else step_loss + loss.detach()
            micro += 1
            if not acc.sync_gradients:
                continue
            s.step += 1
            s.first_step_time = s.first_step_time or time.time()
            if s.ema is not None:
                s.ema.step(s.params)
            loss_value = acc.gather((step_loss / micro).reshape(1)).mean().item()
            micro = 0
            result.losses.append(loss_value)
            # Drawn by update() at tqdm's pace (every 0.1 s at most); a refresh per step wrote the bar each step.
            bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
            bar.update(1)
            if s.step % cfg.run.log_every == 0 or s.step == t.max_steps:
                lrs = {f"lr/{g['name']}": g["lr"] for g in s.optimizer.param_groups}
                elapsed = time.perf_counter() - started
                s.log.log(s.step, {"loss": loss_value, "grad_norm": float(grad_norm), "images_per_s": seen / elapsed,
                                   "images": seen, "elapsed_s": round(elapsed, 4), **lrs})
            if cfg.sample.every and s.step % cfg.sample.every == 0:
                _validate(s, cfg)
            out_of_time = bool(cfg.run.max_minutes) and time.perf_counter() - started > cfg.run.max_minutes * 60
            # Every process must take the same decision, or one waits forever for the others.
            stopping, out_of_time = agree(acc, stop.signal is not None, out_of_time)
            if s.step % cfg.run.checkpoint_every == 0 or s.step == t.max_steps or stopping or out_of_time:
                save_state(s, acc)
            if out_of_time:
                acc.print(f"\ntime budget of {cfg.run.max_minutes} min reached at step {s.step}")
                break
            if stopping:
                break
    bar.close()
    s.cuda_peaks["steps"] = cuda_peak(acc.device)
    if stop.signal:
        if s.saved_step != s.step:
            save_state(s, acc)
        result.stopped_early = stop.signal
        acc.print(f"\n{stop.signal}: stopped after step {s.step}; resume with --resume latest")
    write_process_summary(s)
    acc.wait_for_everyone()  # without this a process can die at exit while another still writes
    if not result.stopped_early:
        # The trained weights first: a failure while sampling must never lose them.
        if s.ema is not None:
            s.ema.copy_to(s.params)
        if acc.is_main_process:
            save_final(s.parts_obj, s.parts, cfg, s.run_dir, acc)
            plot_loss(s.log.read(), s.run.loss_plot)
        acc.wait_for_everyone()
        _validate(s, cfg, ema=False)  # the parameters now hold the EMA weights
    acc.wait_for_everyone()
    acc.end_training()
    result.step = s.step
    return result


def _next_items(s: RunState, batches) -> list[dict]:
    """The next batch's examples; a run whose covers stop decoding ends with one line, not a spin."""
    items, failed = next(batches)
    s.dataset.failed += failed
    s.consumed += 1
    s.empty_batches = 0 if items else s.empty_batches + 1
    if s.empty_batches >= min(MAX_EMPTY_BATCHES, len(s.sampler)):
        example = s.dataset.failed[-1] if s.dataset.failed else "?"
        raise CoverforgeError(f"no cover decoded in the last {s.empty_batches} batches ({len(set(s.dataset.failed))} covers failed, "
                              f"e.g. {example}): the images changed or vanished since `coverforge prepare`; run prepare again")
    return items


def batch_seed(seed: int, local_batch: int, rank: int, world: int) -> int:
    """The seed of one micro-batch's noise, timesteps and caption dropout, from its place in the
    global order: the same global batches draw the same noise on 1 or N processes, and after a resume."""
    return (seed * 1_000_003 + local_batch * world + rank) % 2**63


def agree(acc, *flags: bool) -> list[bool]:
    """Each flag true on every process when it is true on any (one all-reduce; none on one process)."""
    if acc.num_processes == 1:
        return list(flags)
    votes = acc.reduce(torch.tensor([float(f) for f in flags], device=acc.device), reduction="sum")
    return [bool(v > 0) for v in votes.tolist()]


def _loss(s: RunState, batch) -> torch.Tensor:
    """Noise a batch, predict, and score the prediction against the recipe's target."""
    t, acc = s.cfg.train, s.accelerator
    latents = _latents(s, batch)
    prompts = [("" if torch.rand((), generator=s.noise_gen).item() < s.cfg.data.caption_dropout else p) for p in batch["prompts"]]
    cond = s.train_text.encode(prompts)  # the text cache when the encoders are frozen
    if s.prediction_type == "flow":
        return _flow_loss(s, latents, cond)
    noise = sample_noise(latents, s.noise_gen, t.noise_offset)
    timesteps = sample_timesteps(latents.shape[0], s.noise_gen, t.timestep_min, min(t.timestep_max, s.noise_scheduler.config.num_train_timesteps), acc.device)
    noisy = s.noise_scheduler.add_noise(latents, noise, timesteps)
    added = None
    if cond.pooled is not None:
        time_ids = torch.cat([batch["original_size"], batch["crop_top_left"], batch["target_size"]], dim=1)
        added = {"text_embeds": cond.pooled, "time_ids": time_ids.to(acc.device, cond.pooled.dtype)}
    # Cast once under autocast: left in fp32, every cross-attention's to_k and to_v makes (and autograd
    # keeps) its own low-precision copy of the same prompt embeddings; the values they compute are the same.
    hidden = cond.hidden if s.autocast_dtype is None else cond.hidden.to(s.autocast_dtype)
    pred = s.unet_forward(noisy, timesteps, hidden, added)
    target = target_for(s.noise_scheduler, latents, noise, timesteps, s.prediction_type)
    weights = SNR_WEIGHTINGS[t.snr_weighting](s.noise_scheduler, timesteps, t.min_snr_gamma, s.prediction_type) if t.min_snr_gamma else None
    return diffusion_loss(pred, target, weights, t.loss, t.huber_delta, t.edge_loss_weight)


def _latents(s: RunState, batch) -> torch.Tensor:
    """The batch's training latents: drawn from the cached posterior, as encoding would draw them."""
    device = s.accelerator.device
    if "posterior" in batch:
        return s.codec.latents(batch["posterior"].to(device), s.noise_gen)
    if s.codec is None:  # a pixel-space model
        return batch["pixels"].to(device)
    with torch.no_grad():
        return s.codec.latents(s.codec.posterior(batch["pixels"].to(device, s.codec.vae.dtype)), s.noise_gen)


def _flow_loss(s: RunState, latents: torch.Tensor, cond) -> torch.Tensor:
    """Flow matching (training/flow_matching.py): the velocity at sigmas shifted as the model samples."""
    t, flow = s.cfg.train, family_of(s.parts_obj.family).flow
    noise = torch.randn(latents.shape, generator=s.noise_gen, dtype=latents.dtype).to(latents.device)
    sigmas = draw_sigmas(latents.shape[0], s.noise_gen, t.flow_weighting, t.flow_logit_mean, t.flow_logit_std)
    tokens = (latents.shape[2] // flow.patch) * (latents.shape[3] // flow.patch)
    sigmas = shift_sigmas(sigmas, s.parts_obj.scheduler_config, tokens, t.flow_shift).to(latents.device)
    pred = s.unet_forward(noisy_latents(latents, noise, sigmas), sigmas, cond.hidden, cond.mask)
    return diffusion_loss(pred, velocity_target(latents, noise), None, t.loss, t.huber_delta, t.edge_loss_weight)


def _validate(s: RunState, cfg: Config, ema: bool = True) -> None:
    """Validation images with the weights `final/` gets: the EMA weights when the run keeps an EMA."""
    if not cfg.sample.prompts or not s.accelerator.is_main_process:
        return
    swap = ema and s.ema is not None
    if swap:
        s.ema.store(s.params)
        s.ema.copy_to(s.params)
    unet = s.accelerator.unwrap_model(s.unet)
    for m in (unet, *(spec.encoder for spec in s.conditioner.specs)):
        m.eval()
    gen = Generator(unet, s.conditioner, s.parts_obj.scheduler_config, s.parts_obj.vae,
                    family_of(s.parts_obj.family).zero_empty_negative, s.parts_obj.family)
    # The parts the steps run without (training/offload.py); peft's input casts, which generation
    # needs without autocast (training/switches.py).
    with s.offload.restored(), lora_inputs_cast(s.modules):
        sample_validation(gen, cfg, s.run.samples, s.step)
    for part in s.parts:
        part.module.train()
    if swap:
        s.ema.restore(s.params)


def _progress_bar(enabled: bool, start: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, desc="training", unit="step", dynamic_ncols=True)
