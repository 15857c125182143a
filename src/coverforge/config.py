"""Typed configuration: dataclasses with documented fields, loaded from TOML, dotted overrides.

`load_config("run.toml", ["train.max_steps=200"])` returns a validated `Config`. Library code
receives these dataclasses, never raw dicts. `to_toml(config)` writes the resolved config back,
and the run folder and every checkpoint store that text.

What is trained (model, text, data, lora, train) is kept apart from how one run executes
(`run`: logging, checkpoints, caches, speed switches), so a resume may change exactly the latter
(`RESUMABLE`). Where to write and whether to resume are given on the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from coverforge.data.text_files import read_text
from coverforge.errors import ConfigError
from coverforge.models.families import FAMILIES as REGISTERED_FAMILIES

log = logging.getLogger(__name__)

FAMILIES = tuple(REGISTERED_FAMILIES)
RECIPES = ("lora", "full", "scratch")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
LOSSES = ("l2", "l1", "huber")
POOLED_MODES = ("first", "mean", "last")
OPTIMIZERS = ("adamw", "adamw8bit", "prodigy", "adafactor")
LR_SCHEDULES = ("constant", "constant_with_warmup", "cosine", "linear", "cosine_with_restarts", "polynomial")
MIXED_PRECISION = ("no", "fp16", "bf16")
SAMPLERS = {"euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler", "ddim": "DDIMScheduler",
            "ddpm": "DDPMScheduler", "dpm++2m": "DPMSolverMultistepScheduler", "unipc": "UniPCMultistepScheduler",
            "pndm": "PNDMScheduler"}
"""Sampler names users write -> the diffusers scheduler class each one is (the one list of them)."""
NO_SAMPLE_PREDICTION = ("euler_a", "pndm")
"""Samplers whose diffusers step raises on a model that predicts the clean sample (prediction_type "sample")."""
LORA_PRESETS = ("attn", "attn+ff", "attn+conv")
SEED_MAX = 2**64 - 1
"""torch.Generator.manual_seed takes any 64-bit unsigned seed."""
TRAIN_SEED_MAX = 2**32 - 1
"""Training seeds numpy's global generator too, which takes 32 bits."""
SCHEDULE_STEPS = 1000
"""Timesteps of the noise schedule of every supported family (SD 1.x, 2.x, SDXL, scratch)."""


def _choice(path: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{path} = {value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def check_range(path: str, value: float, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, error: type[Exception] = ConfigError) -> None:
    """`value` within [low, high] (ends open where asked); NaN and infinities never pass. The
    message names `path` (a dotted field, or a command-line flag) and the range."""
    finite = isinstance(value, int) or math.isfinite(value)
    ok = finite and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if ok:
        return
    if low is not None and high is not None:
        closed_ints = isinstance(value, int) and not (low_open or high_open)
        bounds = f"in {low}..{high}" if closed_ints else f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f"{'>' if low_open else '>='} {low:g}"
    else:
        bounds = ""
    what = f"a finite number {bounds}".strip() if not finite else bounds
    raise error(f"{path} = {value!r} must be {what}")


_range = check_range


def _positive(path: str, value: float, allow_zero: bool = False) -> None:
    _range(path, value, 0, low_open=not allow_zero)


def _at_least_one(path: str, value: int) -> None:
    _range(path, value, 1)


@dataclass(slots=True)
class ModelConfig:
    """The base model, or the shape of a model trained from scratch."""

    path: str = ""
    """Local diffusers folder, hub id, or single-file .safetensors checkpoint. Empty for scratch."""
    family: str = ""
    """sd15 | sd2 | sdxl. Empty: detected from the model folder."""
    config_folder: str = ""
    """For a single-file checkpoint: a local diffusers folder that supplies configs and tokenizers."""
    allow_pickle: bool = False
    """Load pickled .bin/.ckpt weights. They can run code when loaded: only for files you trust."""
    quantize_text_encoder: str = "none"
    """none | int8 | nf4: store the text encoders' linear weights in 8 or 4 bits (bitsandbytes;
    CUDA and CPU) to cut their memory ~2x / ~3.5x from bf16. LoRA runs only (a full fine-tune saves
    the whole model folder, which must keep full-precision weights); a LoRA on the encoder still trains."""
    quantize_denoiser: str = "none"
    """none | int8 | nf4: the same for the frozen base of the denoiser (the transformer or UNet) under
    LoRA (QLoRA); the adapters stay in full precision. LoRA runs only."""
    scratch_sample_size: int = 32
    """From scratch: side of the square the UNet sees (pixels when scratch_space='pixel')."""
    scratch_space: str = "pixel"
    """From scratch: 'pixel' trains on RGB directly, 'latent' uses the base folder's VAE."""
    scratch_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    """From scratch: UNet block widths."""
    scratch_cross_attention_dim: int = 64
    """From scratch: width of the text encoder built with the model."""
    scratch_layers_per_block: int = 1
    scratch_attention_levels: int = 1
    """From scratch: how many of the lowest-resolution blocks get (self + cross) attention.
    Attention at high resolution dominates the cost on CPU; one level is enough for layout."""
    scratch_text_pooling: bool = True
    """From scratch: also add an attention-pooled summary of the prompt to the timestep embedding
    (diffusers' `addition_embed_type="text"`), so every block, not only the attention ones, hears
    the prompt. Small models learn genre from long prompts far faster with it."""
    scratch_scale_shift: bool = False
    """From scratch: the timestep + prompt embedding scales and shifts each ResNet block's
    normalised features (diffusers' `resnet_time_scale_shift="scale_shift"`, the AdaGN of Dhariwal
    & Nichol 2021) instead of only adding a bias: the prompt steers colours more directly."""
    scratch_noise_shift: float = 1.0
    """From scratch: divide the cosine schedule's signal-to-noise ratio by shift**2 at every
    timestep (the "shifted" schedule of Hoogeboom et al. 2023). Above 1, more training steps fall at
    the high noise levels where a prompt decides an image's palette and layout. 1 = plain cosine."""

    def __post_init__(self) -> None:
        if self.family:
            _choice("model.family", self.family, FAMILIES)
        _choice("model.scratch_space", self.scratch_space, ("pixel", "latent"))
        _at_least_one("model.scratch_sample_size", self.scratch_sample_size)
        if not self.scratch_channels:
            raise ConfigError("model.scratch_channels must list at least one block width")
        for i, width in enumerate(self.scratch_channels):
            _at_least_one(f"model.scratch_channels[{i}]", width)
        _at_least_one("model.scratch_cross_attention_dim", self.scratch_cross_attention_dim)
        if not 1 <= self.scratch_attention_levels <= len(self.scratch_channels):
            raise ConfigError(f"model.scratch_attention_levels must be in 1..{len(self.scratch_channels)} (the number of blocks)")
        _at_least_one("model.scratch_layers_per_block", self.scratch_layers_per_block)
        _positive("model.scratch_noise_shift", self.scratch_noise_shift)
        _choice("model.quantize_text_encoder", self.quantize_text_encoder, ("none", "int8", "nf4"))
        _choice("model.quantize_denoiser", self.quantize_denoiser, ("none", "int8", "nf4"))


@dataclass(slots=True)
class TextConfig:
    """Long-prompt encoding, identical in training, caching, validation and generation."""

    max_tokens: int = 512
    """Prompt tokens kept (without BOS/EOS); text past this is dropped with a warning."""
    clip_skip: int = 0
    """SD 1.x: use the hidden state this many layers before the last (0 = last layer, the default)."""
    pooled: str = "first"
    """SDXL pooled embedding over chunks: first | mean (over chunks with text) | last."""

    def __post_init__(self) -> None:
        _at_least_one("text.max_tokens", self.max_tokens)
        _positive("text.clip_skip", self.clip_skip, allow_zero=True)
        _choice("text.pooled", self.pooled, POOLED_MODES)


@dataclass(slots=True)
class DataConfig:
    """Where training examples come from and how images become tensors."""

    dataset: str = ""
    """Folder in the imagefolder layout (train/ with metadata.jsonl) written by `coverforge prepare`."""
    split: str = "train"
    """Subfolder of the dataset to train on."""
    resolution: int = 512
    """Training side length in pixels (square side; aspect buckets keep the same pixel area)."""
    buckets: bool = True
    """Group images by aspect ratio instead of cropping every cover to a square."""
    caption_dropout: float = 0.0
    """Probability of training on the empty prompt (classifier-free guidance)."""
    random_flip: bool = False
    """Mirror images at random. Off by default: mirrored covers put lettering and spines wrong."""

    def __post_init__(self) -> None:
        _at_least_one("data.resolution", self.resolution)
        if self.resolution % 8:
            raise ConfigError(f"data.resolution = {self.resolution} must be a multiple of 8")
        _range("data.caption_dropout", self.caption_dropout, 0, 1, high_open=True)


@dataclass(slots=True)
class LoraConfig:
    """LoRA adapters (peft) for the recipe 'lora'."""

    rank: int = 32
    alpha: float = 32.0
    init: str = "gaussian"
    """peft init_lora_weights: gaussian | default (Kaiming). (PiSSA / OLoRA are refused: they
    rewrite the base weights, which a LoRA file does not carry, so the saved adapter would not load.)"""
    dropout: float = 0.0
    unet_preset: str = "attn"
    """attn | attn+ff | attn+conv: which modules of the denoiser (UNet, or the flow families'
    transformer) get adapters, per family (models/families.py)."""
    unet_targets: list[str] = field(default_factory=list)
    """Explicit denoiser module names; overrides unet_preset when set."""
    text_targets: list[str] = field(default_factory=list)
    """Text-encoder module names that get adapters when a text encoder is trained; empty: the
    family's (CLIP: q/k/v/out_proj, fc1, fc2; the LLM encoders: q/k/v/o_proj and the MLP's projections)."""

    def __post_init__(self) -> None:
        _at_least_one("lora.rank", self.rank)
        _positive("lora.alpha", self.alpha)
        _range("lora.dropout", self.dropout, 0, 1, high_open=True)
        if self.init in ("pissa", "olora"):
            raise ConfigError(f"lora.init = {self.init!r} changes the base model's weights, which the saved LoRA file cannot carry "
                              "(it would not load onto the base model): use 'gaussian' or 'default'")
        _choice("lora.init", self.init, ("gaussian", "default"))
        _choice("lora.unet_preset", self.unet_preset, LORA_PRESETS)


@dataclass(slots=True)
class TrainConfig:
    """The optimisation: recipe, learning rates, schedule, diffusion loss."""

    recipe: str = "lora"
    """lora | full | scratch."""
    train_unet: bool = True
    train_text_encoder: bool = False
    """Train the (first) text encoder: LoRA adapters or full weights, by recipe."""
    train_text_encoder_2: bool = False
    """SDXL: train the second text encoder."""
    lr_unet: float = 1e-4
    lr_text_encoder: float = 5e-5
    lr_text_encoder_2: float = 1e-5
    optimizer: str = "adamw"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-2
    eps: float = 1e-8
    lr_schedule: str = "constant_with_warmup"
    warmup_ratio: float = 0.05
    """Fraction of max_steps spent warming up."""
    max_steps: int = 1000
    """Also the length of the LR schedule. The one training field a resume may change (to train longer)."""
    batch_size: int = 1
    """Per-process batch size."""
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    """Clip the gradient norm to this value (0 disables)."""
    mixed_precision: str = "no"
    seed: int = 0
    prediction_type: str = ""
    """Training target; empty: what the base model's scheduler predicts."""
    min_snr_gamma: float = 0.0
    """Min-SNR weighting (Hang et al. 2023); 0 disables, 5 is the paper's value. Also the cap of
    the truncated weighting (snr_weighting)."""
    snr_weighting: str = "min"
    """With min_snr_gamma > 0: min (min-SNR-gamma) | truncated (max(SNR, 1) on the clean sample,
    capped at gamma: the high-noise steps keep their weight; Salimans & Ho 2022)."""
    loss: str = "l2"
    """Per-pixel loss of the prediction: l2 (mean squared error) | l1 | huber (pseudo-Huber, l2 below
    huber_delta and l1 above it). The l2 minimiser is the mean of what the noisy input allows, the
    l1 one its median: where an edge could fall on either side of a pixel, the median picks a side."""
    huber_delta: float = 0.1
    """With loss = huber: the error (in the target's units) where l2 turns into l1."""
    edge_loss_weight: float = 0.0
    """Adds this times the squared error of neighbouring pixels' differences (training/diffusion.py
    edge_error): up to 1 + 8x the weight on pixel-wide structure; 0 is the plain loss."""
    noise_offset: float = 0.0
    timestep_min: int = 0
    timestep_max: int = 1000
    flow_weighting: str = "logit_normal"
    """Flow families: how training draws sigmas, uniform | logit_normal (then shifted as the scheduler config says)."""
    flow_logit_mean: float = 0.0
    flow_logit_std: float = 1.0
    flow_shift: float = 0.0
    """Flow families: a static sigma shift for training; 0 = the shift the model's scheduler samples with."""
    ema_decay: float = 0.0
    """EMA of trained weights; 0 disables. The EMA weights are the ones saved at the end."""
    on_nonfinite: str = "stop"
    """What a NaN/inf loss does: stop | skip (the step)."""

    def __post_init__(self) -> None:
        _choice("train.recipe", self.recipe, RECIPES)
        _choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _choice("train.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("train.mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _choice("train.on_nonfinite", self.on_nonfinite, ("stop", "skip"))
        _choice("train.flow_weighting", self.flow_weighting, ("uniform", "logit_normal"))
        _choice("train.snr_weighting", self.snr_weighting, ("min", "truncated"))
        _choice("train.loss", self.loss, LOSSES)
        _positive("train.huber_delta", self.huber_delta)
        _positive("train.edge_loss_weight", self.edge_loss_weight, allow_zero=True)
        _positive("train.flow_logit_std", self.flow_logit_std)
        _positive("train.flow_shift", self.flow_shift, allow_zero=True)
        check_range("train.flow_logit_mean", self.flow_logit_mean, -10, 10)
        if self.prediction_type:
            _choice("train.prediction_type", self.prediction_type, PREDICTION_TYPES)
        for name in ("lr_unet", "lr_text_encoder", "lr_text_encoder_2", "eps"):
            _positive(f"train.{name}", getattr(self, name))
        for name in ("max_steps", "batch_size", "grad_accum"):
            _at_least_one(f"train.{name}", getattr(self, name))
        for name in ("weight_decay", "max_grad_norm", "min_snr_gamma", "noise_offset"):
            _positive(f"train.{name}", getattr(self, name), allow_zero=True)
        if len(self.betas) != 2:
            raise ConfigError(f"train.betas = {self.betas} must hold two numbers")
        for i, beta in enumerate(self.betas):
            _range(f"train.betas[{i}]", beta, 0, 1, high_open=True)
        _range("train.seed", self.seed, 0, TRAIN_SEED_MAX)
        _range("train.warmup_ratio", self.warmup_ratio, 0, 1, high_open=True)
        _range("train.timestep_min", self.timestep_min, 0, SCHEDULE_STEPS - 1)
        _range("train.timestep_max", self.timestep_max, 1, SCHEDULE_STEPS)
        if self.timestep_min >= self.timestep_max:
            raise ConfigError(f"train.timestep_min = {self.timestep_min} must be below train.timestep_max = {self.timestep_max}")
        _range("train.ema_decay", self.ema_decay, 0, 1, high_open=True)
        if not (self.train_unet or self.train_text_encoder or self.train_text_encoder_2):
            raise ConfigError("nothing to train: set train.train_unet or train.train_text_encoder[_2]")


@dataclass(slots=True)
class RunConfig:
    """How a run executes: when it stops early, what it logs and checkpoints, how data is loaded
    and cached, and switches that trade speed for memory. None of it changes what a training step
    computes, so all of it may change when a run resumes (see `RESUMABLE`)."""

    max_minutes: float = 0.0
    """Also stop (and save the final weights) after this much training time; 0 = no limit."""
    checkpoint_every: int = 500
    checkpoints_total_limit: int = 3
    log_every: int = 10
    log_with: str = "tensorboard"
    """tensorboard | wandb | none; logs/metrics.jsonl and logs/loss.png are written in every case."""
    num_workers: int = 0
    """DataLoader worker processes."""
    cache: bool = True
    """Precompute VAE latents (frozen VAE) and long-prompt text embeddings (when every text encoder
    is frozen) once, keyed by image, prompt, model and setting; `coverforge cache` does it ahead."""
    cache_dir: str = ""
    """Where the cache lives; empty: DATASET/.cache. Shared by runs: entries are keyed by model."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more compute."""
    attention: str = "sdpa"
    """UNet attention kernel: sdpa (torch scaled_dot_product_attention) | eager (plain matmuls)."""
    vae_slicing: bool = False
    """Encode images one at a time through the VAE (lower peak memory when caching big batches)."""
    vae_tiling: bool = False
    """Encode large images in overlapping tiles through the VAE (lower peak memory at high resolution)."""
    compile_unet: bool = False
    """torch.compile the UNet (first steps are slow while it compiles; pays off on long runs)."""
    trace_unet: str = "auto"
    """auto | on | off: replay the UNet's (or flow transformer's) training forward from TorchScript
    traces, the same ops without Python's per-op overhead (training/traced_unet.py). auto: on the
    CPU, where that is exact (one process, no gradient checkpointing, autocast or compile); on:
    there and on a GPU, or an error."""
    offload_text_encoder: bool = True
    """When the text cache holds every training prompt, move the text encoders to the CPU before
    the first step (back to the device only while validation samples are drawn)."""
    offload_vae: bool = True
    """When the latent cache holds every image, move the VAE to the CPU before the first step
    (back only while validation samples are decoded: one move each way per validation)."""

    def __post_init__(self) -> None:
        _choice("run.attention", self.attention, ("sdpa", "eager"))
        _choice("run.trace_unet", self.trace_unet, ("auto", "on", "off"))
        _choice("run.log_with", self.log_with, ("tensorboard", "wandb", "none"))
        for name in ("checkpoint_every", "checkpoints_total_limit", "log_every"):
            _at_least_one(f"run.{name}", getattr(self, name))
        _positive("run.max_minutes", self.max_minutes, allow_zero=True)
        _range("run.num_workers", self.num_workers, 0)


@dataclass(slots=True)
class SampleConfig:
    """Generation settings shared by validation during training and `coverforge generate`."""

    sampler: str = "euler"
    steps: int = 30
    guidance_scale: float = 5.0
    width: int = 0
    """Pixels; 0 = the model's native size."""
    height: int = 0
    negative_prompt: str = ""
    lora_scale: float = 1.0
    prompts: list[str] = field(default_factory=list)
    """Validation prompts sampled during training."""
    seeds: list[int] = field(default_factory=lambda: [0])
    every: int = 0
    """Sample the validation prompts every this many steps (0 = only at the end)."""

    def __post_init__(self) -> None:
        # Everything here is used at the end of a run (validation samples), after all the steps:
        # a value that cannot work must fail now, not after hours of training.
        _choice("sample.sampler", self.sampler, SAMPLERS)
        _range("sample.steps", self.steps, 1, SCHEDULE_STEPS)
        _positive("sample.guidance_scale", self.guidance_scale, allow_zero=True)
        _range("sample.lora_scale", self.lora_scale)
        _range("sample.every", self.every, 0)
        for name in ("width", "height"):
            _range(f"sample.{name}", getattr(self, name), 0)
            if getattr(self, name) % 8:
                raise ConfigError(f"sample.{name} = {getattr(self, name)} must be a multiple of 8")
        if not self.seeds:
            raise ConfigError("sample.seeds is empty: give at least one seed, e.g. seeds = [0] (one sample per prompt and seed)")
        for i, seed in enumerate(self.seeds):
            _range(f"sample.seeds[{i}]", seed, 0, SEED_MAX)


@dataclass(slots=True)
class Config:
    """Everything a run needs to know about what it trains and how it samples."""

    model: ModelConfig = field(default_factory=ModelConfig)
    text: TextConfig = field(default_factory=TextConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def __post_init__(self) -> None:
        if self.train.recipe != "scratch" and not self.model.path:
            raise ConfigError(f"model.path is required for recipe {self.train.recipe!r}")
        if self.train.recipe == "scratch" and self.model.scratch_space == "pixel":
            # A pixel-space UNet halves the image at each level but the last: samples of other sizes fail after training.
            multiple = 2 ** (len(self.model.scratch_channels) - 1)
            for name in ("width", "height"):
                value = getattr(self.sample, name)
                if value % multiple:
                    raise ConfigError(f"sample.{name} = {value} must be a multiple of {multiple} for a scratch model with "
                                      f"{len(self.model.scratch_channels)} blocks (or 0: the model's own size)")
        if self.train.prediction_type == "sample" and self.sample.sampler in NO_SAMPLE_PREDICTION:
            # Caught here, not at the first validation image after minutes of training.
            raise ConfigError(sample_prediction_refusal(self.sample.sampler))


def sample_prediction_refusal(sampler: str) -> str:
    fits = ", ".join(name for name in SAMPLERS if name not in NO_SAMPLE_PREDICTION)
    return (f"sample.sampler = {sampler!r} cannot sample a model that predicts the clean image (prediction_type \"sample\"); "
            f"choose one of {fits}")


# --- loading ---------------------------------------------------------------------------------


def _coerce(path: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field annotation; ints widen to floats, nothing else converts."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a table, got {value!r}")
        return _build(annotation, value, path)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return None if value is None else _coerce(path, value, options[0])
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        return [_coerce(f"{path}[{i}]", v, item) for i, v in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    if annotation is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{path} must be an integer, got {value!r}")
    if annotation in (float, str) and not isinstance(value, annotation):
        raise ConfigError(f"{path} must be a {annotation.__name__}, got {value!r}")
    return value


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"did you mean {where}{close[0]}?" if close else f"known fields: {', '.join(sorted(names))}"
        raise ConfigError(f"unknown config field {where}{unknown[0]}; {hint}")
    kwargs = {k: _coerce(f"{prefix}.{k}" if prefix else k, v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.field=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare strings need no quotes on the command line
    return key.strip().split("."), value


def sample_settings(base: SampleConfig | None = None, overrides: list[str] = ()) -> SampleConfig:
    """`base` (defaults when None) with `sample.field=value` overrides, validated like a config's."""
    merged = to_dict(base or SampleConfig())
    for text in overrides:
        keys, value = _parse_override(text)
        if len(keys) != 2 or keys[0] != "sample":
            raise ConfigError(f"override {text!r}: generation takes sample.* settings only, e.g. sample.steps=20")
        merged[keys[1]] = value
    return _build(SampleConfig, merged, "sample")


RESUMABLE = {f"run.{f.name}" for f in dataclasses.fields(RunConfig)} | {"train.max_steps"}
"""Fields a resumed run may change: how it runs, and how long (the `sample` section too)."""

MOVED = {("train", name): "run" for name in ("max_minutes", "checkpoint_every", "checkpoints_total_limit", "log_every", "log_with",
                                             "gradient_checkpointing", "attention", "vae_slicing", "vae_tiling", "compile_unet")}
MOVED |= {("data", name): "run" for name in ("num_workers", "cache", "cache_dir")}
"""Fields that moved to another section; configs (and run folders) written before still load."""


def _move_old_fields(merged: dict) -> None:
    for (section, name), new in MOVED.items():
        old = merged.get(section)
        if isinstance(old, dict) and name in old:
            value = old.pop(name)
            target = merged.setdefault(new, {})
            if isinstance(target, dict) and name not in target:  # the new name wins when both are given
                target[name] = value
                log.warning("config: %s.%s is now %s.%s (read it from the old place this time)", section, name, new, name)


def config_from_dict(values: dict, overrides: list[str] = ()) -> Config:
    """Build a validated Config from a nested dict plus `section.field=value` overrides."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for text in overrides:
        keys, value = _parse_override(text)
        node = merged
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = value
    _move_old_fields(merged)
    return _build(Config, merged)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a TOML file (or start from defaults when `path` is None) and apply overrides."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = tomllib.loads(read_text(path, "config file"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
    return config_from_dict(values, overrides)


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def to_toml(config: Config) -> str:
    return tomli_w.dumps(to_dict(config))


def diff_configs(a: Config, b: Config) -> list[str]:
    """Dotted names of the fields whose values differ between two configs."""
    out = []
    for section in dataclasses.fields(a):
        sa, sb = getattr(a, section.name), getattr(b, section.name)
        for f in dataclasses.fields(sa):
            if getattr(sa, f.name) != getattr(sb, f.name):
                out.append(f"{section.name}.{f.name}")
    return out
