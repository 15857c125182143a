"""Aspect-ratio buckets: covers train at their own shape, never squashed.

Buckets come from a grid, the common cover ratios and the dataset's own ratios (those held by
enough covers to fill a batch). Each bucket has at most resolution**2 pixels and at least 90% of
that: a batch size that fits in memory at the square size fits in every bucket, and no bucket
costs more compute than the square. Cover ratios (2:3 trade paperback, 1:1.6 ebook) get their
own exact or near-exact bucket so a typical cover is only resized, with at most a sliver cropped;
the crop offset is returned for SDXL's crop conditioning (Podell et al. 2023, sec. 2.2).
"""

from __future__ import annotations

import math

from PIL import Image

# width / height of the cover shapes that must have (near-)exact buckets.
COVER_RATIOS = (2 / 3, 1 / 1.6)
_RATIO_TOLERANCE = 0.01
_AREA_TOLERANCE = 0.1


def make_buckets(resolution: int, step: int = 64, max_aspect: float = 2.0, fine_step: int = 8,
                 ratios: tuple[float, ...] = ()) -> list[tuple[int, int]]:
    """(width, height) buckets of at most (and about) resolution**2 pixels, sorted from tallest to widest:
    a grid by `step`, plus the closest bucket (steps down to `fine_step`) to each cover ratio and to
    each of `ratios` (the dataset's own, from `dataset_ratios`)."""
    if resolution < 8 or step < 8 or step % 8:
        raise ValueError(f"resolution ({resolution}) and step ({step}) must be >= 8 and step a multiple of 8")
    if max_aspect < 1.0:
        raise ValueError(f"max_aspect must be >= 1, got {max_aspect}")
    area = resolution * resolution
    buckets = set()
    w = step
    while w <= resolution * max_aspect:
        h = area // w // step * step  # rounded down: never more pixels than the square
        if h >= step and w * h >= area * (1 - _AREA_TOLERANCE) and 1 / max_aspect <= w / h <= max_aspect:
            buckets.add((w, h))
        w += step
    wanted = [r for ratio in COVER_RATIOS for r in (ratio, 1 / ratio)] + list(ratios)
    for r in wanted:
        if 1 / max_aspect <= r <= max_aspect:
            bucket = _ratio_bucket(area, r, step, fine_step)
            if bucket is not None:
                buckets.add(bucket)
    return sorted(buckets, key=lambda b: (b[0] / b[1], b[0]))


def dataset_ratios(sizes: list[tuple[int, int]], min_images: int, tolerance: float = 0.02) -> tuple[float, ...]:
    """The aspect ratios (width / height) a dataset's covers actually have, each held by at least
    `min_images` covers (a bucket with fewer never fills a batch). Ratios within `tolerance` (in
    log space) of a group's narrowest are pooled, and the group's median stands for it, so a
    catalogue of 300x475, 318x500 and 320x504 covers makes one bucket, not three."""
    if min_images <= 0:
        return ()
    groups: list[list[float]] = []
    for r in sorted(w / h for w, h in sizes):
        if groups and math.log(r / groups[-1][0]) <= tolerance:
            groups[-1].append(r)
        else:
            groups.append([r])
    return tuple(g[len(g) // 2] for g in groups if len(g) >= min_images)


def _ratio_bucket(area: int, ratio: float, step: int, fine_step: int = 8) -> tuple[int, int] | None:
    """The bucket for width/height == ratio with the coarsest step (<= step, >= fine_step) that hits it
    within 1%; None at areas too small for any such bucket within the area tolerance."""
    best = None
    for s in (step, 32, 16, 8):
        if s > step or s < fine_step:
            continue
        w0 = math.sqrt(area * ratio)
        for w in range(max(s, int(w0 * 0.8) // s * s), int(w0 * 1.2) + s, s):
            for h in (math.floor(w / ratio / s) * s, math.ceil(w / ratio / s) * s):
                if h < s or not area * (1 - _AREA_TOLERANCE) <= w * h <= area:
                    continue
                err = abs(math.log((w / h) / ratio))
                key = (err, area - w * h)
                if best is None or key < best[0]:
                    best = (key, (w, h))
        if best is not None and best[0][0] <= _RATIO_TOLERANCE:
            return best[1]
    return best[1] if best is not None else None


def assign_bucket(width: int, height: int, buckets) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest in log space (ties: the larger bucket)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    target = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - target), -b[0] * b[1]))


def fit_to_bucket(image: Image.Image, bucket: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """Resize (LANCZOS, aspect kept) to cover the bucket, centre-crop the excess; returns (image, (top, left))."""
    bw, bh = bucket
    w, h = image.size
    scale = max(bw / w, bh / h)
    nw, nh = max(bw, round(w * scale)), max(bh, round(h * scale))
    resized = image if (nw, nh) == (w, h) else image.resize((nw, nh), Image.Resampling.LANCZOS)
    top, left = (nh - bh) // 2, (nw - bw) // 2
    if (nw, nh) != (bw, bh):
        resized = resized.crop((left, top, left + bw, top + bh))
    return resized, (top, left)
