"""The per-cover work of `prepare` (check, convert, downscale, hash, stage) and what follows it
across covers: duplicate removal and the seeded, genre-stratified split.

`process_cover` is a top-level function of picklable arguments so it runs in worker processes.
"""

from __future__ import annotations

import random
import shutil
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coverforge.data.disk_space import is_full
from coverforge.data.images import (
    CoverChecks,
    ImageRejected,
    check_cover,
    dhash,
    downscale,
    file_sha256,
    phash,
    pixel_sha256,
)

_COPY_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_LOSSY = ("JPEG", "WEBP", "AVIF")  # stored as JPEG at quality 95: PNG would only store the codec's artefacts bigger


@dataclass(frozen=True)
class CoverTask:
    key: int
    """The row (catalogue) or image index (folder) this cover belongs to."""
    source: str
    stem: str
    """Output file name without extension."""
    staging: str
    checks: CoverChecks
    max_side: int | None = None


@dataclass(frozen=True)
class CoverResult:
    key: int
    reason: str = ""
    """Why the cover was rejected; empty when it was staged."""
    file_name: str = ""
    width: int = 0
    height: int = 0
    sha256: str = ""
    pixels_sha256: str = ""
    dhash: int = 0
    phash: int = 0


def process_cover(task: CoverTask) -> CoverResult:
    """Check one cover and stage the file to keep; never raises (a failure is a rejection reason)."""
    try:
        cover = check_cover(task.source, task.checks)
        image = cover.image
        pixels = pixel_sha256(image)
        d, p = dhash(image), phash(image)
        stored = downscale(image, task.max_side)
        if stored is image and not cover.changed:
            # Untouched JPEG/PNG/WebP: copy the bytes, never re-encode (no generation loss).
            target = Path(task.staging) / (task.stem + _COPY_EXT[cover.format])
            shutil.copyfile(task.source, target)
        elif cover.format in _LOSSY:
            target = Path(task.staging) / (task.stem + ".jpg")
            stored.save(target, "JPEG", quality=95, subsampling=0)
        else:
            target = Path(task.staging) / (task.stem + ".png")
            stored.save(target, "PNG", compress_level=6)
        return CoverResult(task.key, "", target.name, stored.width, stored.height, file_sha256(target), pixels, d, p)
    except ImageRejected as e:
        return CoverResult(task.key, str(e))
    except OSError as e:
        if is_full(e):
            raise  # the disk, not the cover: every later cover would fail too
        return CoverResult(task.key, f"processing failed: {type(e).__name__}: {e}")
    except Exception as e:  # a bug or an exotic file must not stop a 50k-row run
        return CoverResult(task.key, f"processing failed: {type(e).__name__}: {e}")


def process_all(tasks: list[CoverTask], workers: int) -> list[CoverResult]:
    """Results in task order; workers > 1 uses that many processes (decode is CPU-bound)."""
    if workers <= 1 or len(tasks) < 2:
        return [process_cover(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(process_cover, tasks, chunksize=max(1, min(32, len(tasks) // (workers * 4)))))


def find_duplicates(results: list[CoverResult], max_distance: int | None) -> dict[int, tuple[int, str]]:
    """key -> (kept key, 'exact'|'near') for every duplicate; the largest image (then lowest key) is kept.

    Near duplicates need both pHash and dHash within max_distance bits: two different covers from
    one series template often agree on one hash but rarely on both. None disables near checks.
    """
    order = sorted(results, key=lambda r: (-r.width * r.height, r.key))
    exact: dict[str, int] = {}
    kept_keys: list[int] = []
    kept_p = np.zeros(len(order), dtype=np.uint64)
    kept_d = np.zeros(len(order), dtype=np.uint64)
    duplicates: dict[int, tuple[int, str]] = {}
    for r in order:
        if r.pixels_sha256 in exact:
            duplicates[r.key] = (exact[r.pixels_sha256], "exact")
            continue
        if max_distance is not None and kept_keys:
            n = len(kept_keys)
            near = (np.bitwise_count(kept_p[:n] ^ np.uint64(r.phash)) <= max_distance) & (
                np.bitwise_count(kept_d[:n] ^ np.uint64(r.dhash)) <= max_distance
            )
            hits = np.flatnonzero(near)
            if hits.size:
                duplicates[r.key] = (kept_keys[int(hits[0])], "near")
                continue
        exact[r.pixels_sha256] = r.key
        kept_p[len(kept_keys)] = r.phash
        kept_d[len(kept_keys)] = r.dhash
        kept_keys.append(r.key)
    return duplicates


def stratified_split(strata: dict[int, str], val_fraction: float, seed: int) -> set[int]:
    """Keys for validation: round(N * fraction) overall, shared among strata by largest remainder."""
    groups: dict[str, list[int]] = defaultdict(list)
    for key in sorted(strata):
        groups[strata[key]].append(key)
    total = round(len(strata) * val_fraction)
    names = sorted(groups)
    quotas = {g: len(groups[g]) * val_fraction for g in names}
    counts = {g: int(quotas[g]) for g in names}
    rng = random.Random(seed)
    # Ties in remainder (many small genres) are broken by the seed, not by genre name.
    tie_order = list(names)
    rng.shuffle(tie_order)
    by_remainder = sorted(tie_order, key=lambda g: -(quotas[g] - counts[g]))
    for g in by_remainder[: max(0, total - sum(counts.values()))]:
        counts[g] += 1
    validation: set[int] = set()
    for g in names:
        members = list(groups[g])
        rng.shuffle(members)
        validation.update(members[: counts[g]])
    return validation
