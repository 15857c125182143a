"""Training examples from a prepared dataset, batched by aspect bucket with a resumable sampler."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from coverforge.data.buckets import assign_bucket, dataset_ratios, fit_to_bucket, make_buckets
from coverforge.errors import CoverforgeError

log = logging.getLogger(__name__)


def record_size(record: dict) -> tuple[int, int]:
    """(width, height) from the metadata row, or read from the image header where the row has
    none: a plain Hugging Face imagefolder (`file_name` and `text` only) trains as it is."""
    where = f"metadata.jsonl row for {record.get('file_name')!r}"
    if "width" not in record or "height" not in record:
        try:
            with Image.open(record["path"]) as im:
                return im.size
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise CoverforgeError(f"{where}: no width/height, and the image cannot be read ({e}); "
                                  "run `coverforge prepare --from-folder` on the folder to check every image") from None
    try:
        width, height = int(record["width"]), int(record["height"])
    except (TypeError, ValueError):
        raise CoverforgeError(f"{where}: width {record['width']!r} and height {record['height']!r} must be whole numbers "
                              "of pixels (or leave both out: they are read from the image)") from None
    if width < 1 or height < 1:
        raise CoverforgeError(f"{where}: width and height must be >= 1, got {width}x{height}")
    return width, height


class CoverDataset(torch.utils.data.Dataset):
    """Records (from `data.layout.load_records`) -> pixels in [-1, 1] at their bucket's size, or,
    once a latent cache is attached, the cached VAE posterior without opening the image."""

    def __init__(self, records: list[dict], resolution: int, buckets: bool, step: int, random_flip: bool = False, fine_step: int = 8,
                 min_bucket_images: int = 0, seed: int = 0):
        self.records = records
        self.random_flip = random_flip
        self.seed = seed
        self.failed: list[str] = []  # covers that failed to decode during training
        self._warned: set[str] = set()
        self.latents = None  # a cache.latents.LatentCache, when the VAE is frozen and caching is on
        if buckets:
            sizes = [record_size(r) for r in records]
            # min_bucket_images > 0: the dataset's own ratios held by that many covers get buckets too.
            options = make_buckets(resolution, step=step, fine_step=min(fine_step, step), ratios=dataset_ratios(sizes, min_bucket_images))
            self.buckets = [assign_bucket(w, h, options) for w, h in sizes]
        else:
            self.buckets = [(resolution, resolution)] * len(records)

    def __len__(self) -> int:
        return len(self.records)

    def orientations(self) -> tuple[bool, ...]:
        """The views of each cover training can ask for: as is, and mirrored when data.random_flip."""
        return (False, True) if self.random_flip else (False,)

    def flipped(self, index: int, epoch: int) -> bool:
        """A fresh coin per cover and epoch, fixed by (seed, epoch, index): the same across
        resumes, process counts, worker counts and the latent cache (which holds both views)."""
        return self.random_flip and random.Random((self.seed * 1_000_003 + epoch) * 1_000_003 + index).random() < 0.5

    def load_batch(self, indices: list[int], epoch: int = 0, decode_only: bool = False, views: list[bool] | None = None) -> list[dict]:
        """The batch's examples; a cover that fails to decode mid-run is skipped, logged and counted.
        `views` (mirrored or not, per index) overrides the epoch's coin."""
        items = []
        for k, i in enumerate(indices):
            flip = views[k] if views is not None else self.flipped(i, epoch)
            try:
                items.append(self.decode(i, flip) if decode_only else self.item(i, flip))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                path = self.records[i]["path"]
                if path not in self._warned:  # once per cover: a run meets it every epoch
                    self._warned.add(path)
                    log.warning("skipping %s: it no longer decodes (%s)", path, e)
                self.failed.append(path)
        return items

    def __getitem__(self, index: int) -> dict:
        return self.item(index)

    def item(self, index: int, flipped: bool = False) -> dict:
        if self.latents is None:
            return self.decode(index, flipped)
        if self.latents.keys[index, flipped] not in self.latents.store:
            raise OSError("not in the latent cache: it did not decode when the cache was built")
        entry = self.latents.entry(index, flipped)
        return {"index": index, "posterior": entry["posterior"], "sizes": entry["sizes"], "prompt": self.records[index]["text"]}

    def decode(self, index: int, flipped: bool = False) -> dict:
        rec = self.records[index]
        with Image.open(rec["path"]) as im:
            image = im.convert("RGB")
        original = (image.height, image.width)
        image, crop = fit_to_bucket(image, self.buckets[index])
        if flipped:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)  # (3, H, W)
        # sizes: SDXL's micro-conditioning numbers (original h, w, crop top, left, target h, w).
        sizes = torch.tensor([*original, *crop, image.height, image.width])
        return {"index": index, "flipped": flipped, "pixels": pixels, "sizes": sizes, "prompt": rec["text"]}


class _Batches(torch.utils.data.Dataset):
    """The dataset indexed by whole batches, returning (items, covers that failed to decode), so
    failures seen inside worker processes reach the main process's count."""

    def __init__(self, dataset: CoverDataset):
        self.dataset = dataset

    def __getitem__(self, batch: tuple[int, list[int]]) -> tuple[list[dict], list[str]]:
        epoch, indices = batch
        before = len(self.dataset.failed)
        items = self.dataset.load_batch(indices, epoch)
        failed = self.dataset.failed[before:]
        del self.dataset.failed[before:]  # the loop counts them, in whichever process they happened
        return items, failed


def _as_is(batch):
    return batch


def batch_loader(dataset: CoverDataset, sampler: "BucketSampler", num_workers: int):
    """Endless (items, failed) per batch in the sampler's order; with workers, batches load in
    background processes while the model trains. The sampler runs ahead of the loop by the
    prefetched batches: a checkpoint stores the batches the loop consumed, not the sampler's position."""
    batches = _Batches(dataset)
    if num_workers == 0:
        return (batches[indices] for indices in sampler)
    return iter(torch.utils.data.DataLoader(batches, sampler=sampler, batch_size=None, collate_fn=_as_is,
                                            num_workers=num_workers, prefetch_factor=2, persistent_workers=True))


def collate(items: list[dict]) -> dict:
    sizes = torch.stack([i["sizes"] for i in items])
    batch = {
        "prompts": [i["prompt"] for i in items],
        "original_size": sizes[:, 0:2],
        "crop_top_left": sizes[:, 2:4],
        "target_size": sizes[:, 4:6],
    }
    key = "posterior" if "posterior" in items[0] else "pixels"
    batch[key] = torch.stack([i[key] for i in items])
    return batch


@dataclass
class BucketSampler(torch.utils.data.Sampler):
    """Batches of indices from one bucket each; seeded per epoch; resumable from (epoch, position).

    Each process takes every `world`-th batch of the same global order, so processes never
    overlap and the global batch is the sum of the local ones.
    """

    buckets: list[tuple[int, int]]
    batch_size: int
    seed: int = 0
    rank: int = 0
    world: int = 1
    epoch: int = 0
    position: int = 0  # batches of this epoch already consumed (this process)

    def __post_init__(self) -> None:
        if not self.epoch_batches(0):  # checked before the first step, not when the loop asks for a batch
            raise CoverforgeError(self._no_full_batch())

    def _no_full_batch(self) -> str:
        counts: dict[tuple[int, int], int] = {}
        for b in self.buckets:
            counts[b] = counts.get(b, 0) + 1
        largest, n = max(counts.items(), key=lambda kv: kv[1]) if counts else ((0, 0), 0)
        if n >= self.batch_size:  # full batches exist, but fewer than processes
            full = sum(c // self.batch_size for c in counts.values())
            return (f"no full batch for every process: {full} batches of train.batch_size = {self.batch_size} for {self.world} "
                    "processes; lower train.batch_size, use fewer processes, or set data.buckets = false")
        return (f"no full batch: no aspect bucket holds train.batch_size = {self.batch_size} covers (the largest, "
                f"{largest[0]}x{largest[1]}, holds {n} of {len(self.buckets)} in {len(counts)} buckets); lower train.batch_size "
                f"to {max(1, n)} or set data.buckets = false (every cover at one square size)")

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        by_bucket: dict[tuple[int, int], list[int]] = {}
        for i, b in enumerate(self.buckets):
            by_bucket.setdefault(b, []).append(i)
        batches = []
        for b in sorted(by_bucket):
            idx = by_bucket[b]
            rng.shuffle(idx)
            # Drop the ragged tail of each bucket: every batch has the same size on every process.
            batches += [idx[k : k + self.batch_size] for k in range(0, len(idx) - self.batch_size + 1, self.batch_size)]
        rng.shuffle(batches)
        usable = len(batches) - len(batches) % self.world
        return batches[self.rank : usable : self.world]

    def __len__(self) -> int:
        return len(self.epoch_batches(self.epoch))

    def __iter__(self):
        """Endless (epoch, batch) pairs: epochs follow each other; `epoch` and `position` always say where we are."""
        while True:
            batches = self.epoch_batches(self.epoch)
            if not batches:
                raise CoverforgeError(self._no_full_batch())
            while self.position < len(batches):
                batch = batches[self.position]
                self.position += 1
                yield self.epoch, batch
            self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
