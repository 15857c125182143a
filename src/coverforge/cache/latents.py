"""Latent cache: each cover's VAE posterior (mean and log-variance) at its bucket size.

The posterior is cached, not one sample of it: training still draws a fresh latent every time it
sees the cover, from the same generator and in the same order as encoding on the fly would, so a
cached run trains on the same distribution as an uncached one.
"""

from __future__ import annotations

import logging

import torch

from coverforge.cache.keys import digest, image_key, module_fingerprint
from coverforge.cache.store import ShardStore

log = logging.getLogger(__name__)


def latent_setting(vae, dtype: torch.dtype) -> str:
    """The VAE weights and the precision it encodes in (fp16 latents differ from fp32 ones)."""
    return digest("latents", module_fingerprint(vae), str(dtype))


class LatentCache:
    """Keyed posteriors for one dataset's covers, per view (index, mirrored); `entry(i, flipped)`
    is what the dataset yields instead of pixels."""

    def __init__(self, store: ShardStore, keys: dict[tuple[int, bool], str]):
        self.store = store
        self.keys = keys

    def entry(self, index: int, flipped: bool = False) -> dict[str, torch.Tensor]:
        return self.store.get(self.keys[index, flipped])

    def missing(self) -> list[tuple[int, bool]]:
        return [view for view, k in self.keys.items() if k not in self.store]


def dataset_image_keys(dataset) -> dict[tuple[int, bool], str]:
    """Both views of every cover when training mirrors at random (as kohya caches them), else one."""
    return {(i, flipped): image_key(rec, bucket, flipped)
            for i, (rec, bucket) in enumerate(zip(dataset.records, dataset.buckets)) for flipped in dataset.orientations()}


@torch.no_grad()
def encode_missing(cache: LatentCache, dataset, codec, views: list[tuple[int, bool]], batch_size: int, tag: str, progress=None) -> int:
    """Encode the covers' `views` (index, mirrored) one bucket per batch, and write them as one new shard.

    `codec` (models/latent_codec.LatentCodec) gives each family's posterior from pixels.

    Covers that no longer decode are skipped (training skips them too). Returns entries written.
    """
    by_bucket: dict[tuple[int, int], list[tuple[int, bool]]] = {}
    for view in views:
        by_bucket.setdefault(dataset.buckets[view[0]], []).append(view)
    device, dtype = next(codec.vae.parameters()).device, codec.vae.dtype
    entries: dict[str, dict[str, torch.Tensor]] = {}
    for group in by_bucket.values():
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            items = dataset.load_batch([i for i, _ in chunk], decode_only=True, views=[f for _, f in chunk])
            if not items:
                continue
            pixels = torch.stack([it["pixels"] for it in items]).to(device, dtype)
            params = codec.posterior(pixels)
            for it, p in zip(items, params):
                entries[cache.keys[it["index"], it["flipped"]]] = {"posterior": p, "sizes": it["sizes"]}
            if progress is not None:
                progress.update(len(chunk))
    cache.store.write_shard(entries, tag, {"kind": "latents"})
    return len(entries)
