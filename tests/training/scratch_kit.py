"""The tiny from-scratch model the training tests train (16-32 channels at 16 px: a step takes
milliseconds), and a config for it on a prepared dataset."""

from __future__ import annotations

from pathlib import Path

from coverforge.config import Config, config_from_dict

TINY_SCRATCH = {"scratch_channels": [16, 32], "scratch_sample_size": 16, "scratch_cross_attention_dim": 32}
"""`[model]` of the tiny scratch model."""


def scratch_config(tmp_path: Path, dataset: Path, sample: dict | None = None, **train) -> Config:
    """Two steps of batch 2 on `dataset` at 16 px (no buckets, caches under tmp_path); `train`
    overrides `[train]`, `sample` `[sample]` (one prompt, two sampler steps)."""
    return config_from_dict({
        "model": dict(TINY_SCRATCH),
        "data": {"dataset": str(dataset), "resolution": 16, "buckets": False, "cache_dir": str(tmp_path / "cache")},
        "train": {"recipe": "scratch", "max_steps": 2, "batch_size": 2, **train},
        "sample": {"prompts": ["a red book"], "steps": 2, **(sample or {})},
    })
