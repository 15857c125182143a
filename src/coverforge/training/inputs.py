"""What a training config runs on: its records, its models (recipe applied, switches on, placed
on the device in the precision they train in) and its bucketed dataset.

`train` and `coverforge cache` both start here. The cache is keyed by the VAE's dtype, the text
settings and the buckets; because both stages build them with this one function, training finds
every entry `coverforge cache` wrote by construction, not because two copies of the set-up agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from coverforge.config import Config
from coverforge.data.layout import load_records
from coverforge.errors import CoverforgeError
from coverforge.models.grid import latent_multiple, vae_factor
from coverforge.models.latent_codec import LatentCodec
from coverforge.models.loading import ModelParts
from coverforge.models.quantize import check_quantization, quantize_parts
from coverforge.training.dataset import CoverDataset
from coverforge.training.recipe import TrainedPart, apply_recipe, build_parts
from coverforge.training.switches import apply_switches, frozen_dtype, place_models


@dataclass
class RunInputs:
    records: list[dict]
    parts: ModelParts
    trained: list[TrainedPart]
    dataset: CoverDataset

    @property
    def text_frozen(self) -> bool:
        """No text encoder is trained: prompt embeddings never change, so they can be cached."""
        return not any(p.name.startswith("text_encoder") for p in self.trained)


def config_records(cfg: Config) -> list[dict]:
    if not cfg.data.dataset:
        raise CoverforgeError("data.dataset is empty: point it at a folder written by `coverforge prepare`")
    return load_records(cfg.data.dataset, cfg.data.split)


def prepare_inputs(cfg: Config, device) -> RunInputs:
    """Records, models and dataset for `cfg`. The recipe is applied in both stages (it decides what
    is frozen, and so the precision each part is placed in); the cache simply never steps it."""
    records = config_records(cfg)
    check_quantization(cfg)  # before minutes of loading
    parts = build_parts(cfg)
    # Before the recipe: peft wraps the quantised layers with its own bitsandbytes LoRA layers.
    quantize_parts(parts, cfg, device, frozen_dtype(cfg.train, device))
    trained = apply_recipe(parts, cfg)
    apply_switches(parts, cfg.run)
    place_models(parts, cfg.train, device)
    parts.predicting(cfg.train.prediction_type)  # validation and the saved scheduler read the override too
    return RunInputs(records, parts, trained, make_dataset(cfg, parts, records))


def make_dataset(cfg: Config, parts: ModelParts, records: list[dict]) -> CoverDataset:
    """Buckets on the latent grid, plus one for each aspect ratio of the dataset that fills a batch.

    The coarse grid steps by 8 latent pixels (8 x the VAE's downsampling factor; pixels: 8); the
    ratio buckets may step finer, down to 4 latent pixels. Latent sides divisible by 4 keep the
    UNet's first two downsamplings exact (SDXL has only two; SD 1.x's third level, without
    attention, may round up a row). An odd latent side makes every deeper level round up (13x19
    latents trained 5-7% slower than 16x16 on this CPU, for 3.5% fewer pixels). The flow
    transformers need even latent sides (their 2x2 patches): 16 px for both.
    """
    factor = vae_factor(parts)
    return CoverDataset(records, cfg.data.resolution, cfg.data.buckets, step=max(8, 8 * factor),
                        fine_step=max(8, factor * latent_multiple(parts, levels_cap=2)), random_flip=cfg.data.random_flip,
                        min_bucket_images=cfg.train.batch_size, seed=cfg.train.seed)


def cache_for_config(cfg: Config, progress: bool = True, prune: bool = False):
    """`coverforge cache`: build a training config's caches ahead of training, from the same
    inputs training prepares."""
    from accelerate import Accelerator

    from coverforge.cache.build import build_caches
    from coverforge.text.conditioners import conditioner_from_parts

    accelerator = Accelerator(mixed_precision=cfg.train.mixed_precision)
    inputs = prepare_inputs(cfg, accelerator.device)
    if inputs.parts.vae is None and not inputs.text_frozen:
        raise CoverforgeError("nothing to cache: the model has no VAE (pixel space) and its text encoder is trained")
    conditioner = conditioner_from_parts(inputs.parts, cfg.text)
    _, report = build_caches(cfg, LatentCodec.for_parts(inputs.parts), conditioner, inputs.dataset, accelerator, inputs.text_frozen, progress, prune)
    return report
