"""Build (or top up) the caches a training config uses, and hand them to training.

Called by `train` before the first step and by `coverforge cache` ahead of time
(training/inputs.cache_for_config); both compute only the entries that are missing. In a
multi-process run each process encodes every `world`-th missing entry into its own shard; then
all processes wait and read every shard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from coverforge.cache.keys import prompt_key
from coverforge.cache.latents import LatentCache, dataset_image_keys, latent_setting
from coverforge.cache.latents import encode_missing as encode_latents
from coverforge.cache.store import ShardStore
from coverforge.cache.text import CachedConditioner, text_setting
from coverforge.cache.text import encode_missing as encode_texts
from coverforge.config import Config
from coverforge.errors import CoverforgeError, require_writable

log = logging.getLogger(__name__)


@dataclass
class CacheReport:
    """What a build found and did, per cache kind: {'latents': {...}, 'text': {...}}."""

    kinds: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{kind}: {v['entries']} entries ({v['computed']} computed now, {v['seconds']:.1f} s), "
                f"{v['bytes'] / 2**20:.1f} MiB in {v['folder']}" for kind, v in self.kinds.items()]


def cache_root(cfg: Config) -> Path:
    return Path(cfg.run.cache_dir) if cfg.run.cache_dir else Path(cfg.data.dataset) / ".cache"


def build_caches(cfg: Config, codec, conditioner, dataset, accelerator, text_frozen: bool, progress: bool = True, prune: bool = False):
    """Attach a latent cache to `dataset` (when there is a VAE: `codec`, a models/latent_codec.LatentCodec) and return a `CachedConditioner`
    (when every text encoder is frozen, else None), plus a CacheReport. `prune` drops entries
    this dataset no longer uses (replaced images, edited prompts) from the folders it uses."""
    report = CacheReport()
    root = cache_root(cfg)
    require_writable(root, "the cache folder", "; set run.cache_dir to a writable folder, or run.cache=false")
    cached_text = None
    batch = max(1, cfg.train.batch_size)
    rank, world = accelerator.process_index, accelerator.num_processes
    if codec is not None:
        started = time.perf_counter()
        store = ShardStore(root / f"latents-{latent_setting(codec.vae, codec.vae.dtype)}")
        cache = LatentCache(store, dataset_image_keys(dataset))
        todo = cache.missing()
        # Every process must split the same list: one that looked after another had written its
        # shard would see fewer entries missing, and split them differently (some never encoded).
        accelerator.wait_for_everyone()
        with _bar(progress and accelerator.is_main_process, len(todo[rank::world]), "caching latents") as bar:
            encode_latents(cache, dataset, codec, todo[rank::world], batch, f"p{rank}", bar)
        accelerator.wait_for_everyone()
        store.refresh()
        if prune:
            _prune(store, set(cache.keys.values()), accelerator)
        # Covers that failed to decode stay missing; training skips and counts them.
        dataset.latents = cache
        report.kinds["latents"] = _summary(store, len(todo), len(cache.missing()), started)
    if text_frozen and conditioner is not None:
        started = time.perf_counter()
        store = ShardStore(root / f"text-{text_setting(conditioner)}")
        # "" too: caption dropout trains on the empty prompt, and it pads shorter prompts.
        prompts = sorted({r["text"] for r in dataset.records} | {""})
        todo = [p for p in prompts if prompt_key(p) not in store]
        accelerator.wait_for_everyone()  # the same split on every process (see above)
        with _bar(progress and accelerator.is_main_process, len(todo[rank::world]), "caching text") as bar:
            encode_texts(store, conditioner, todo[rank::world], batch, f"p{rank}", bar)
        accelerator.wait_for_everyone()
        store.refresh()
        if prune:
            _prune(store, {prompt_key(p) for p in prompts}, accelerator)
        missing = [p for p in prompts if prompt_key(p) not in store]
        if missing:
            raise CoverforgeError(f"the text cache in {store.folder} lacks {len(missing)} prompts after building it")
        cached_text = CachedConditioner(store, accelerator.device, conditioner)
        report.kinds["text"] = _summary(store, len(todo), 0, started)
    return cached_text, report


def _prune(store: ShardStore, keep: set[str], accelerator) -> None:
    if accelerator.is_main_process:
        dropped = store.compact(keep)
        if dropped:
            log.info("pruned %d stale entries from %s", dropped, store.folder)
    accelerator.wait_for_everyone()
    store.refresh()


def _summary(store: ShardStore, missing_before: int, missing_after: int, started: float) -> dict:
    return {"folder": str(store.folder), "entries": len(store), "computed": missing_before - missing_after,
            "failed": missing_after, "seconds": time.perf_counter() - started, "bytes": store.size_bytes()}


def _bar(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled or total == 0, desc=desc, unit="item", dynamic_ncols=True, leave=False)
