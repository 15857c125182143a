"""Fréchet distances with their real-vs-real floor, in a pixel-PCA space or any feature space.

A Fréchet distance between n generated and m reference images is biased upward at small n and
m; what it means is how far it sits above the distance between two disjoint sets of *real*
images of the same sizes and genre mix, measured by the same code: the floor. `FeatureFloor`
draws such sets from a pool of real images disjoint from the reference.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from coverforge.evaluation.frechet import frechet_distance, stats_from_features


class PixelPCA:
    """Images resized to one size, flattened, projected on the top principal components of a fit set."""

    def __init__(self, fit_images: list[Image.Image], size: tuple[int, int], components: int = 20) -> None:
        self.size = tuple(size)
        x = self._flat(fit_images)
        self.mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.axes = vt[: min(components, len(fit_images) - 1)]

    def _flat(self, images: list[Image.Image]) -> np.ndarray:
        out = []
        for im in images:
            im = im.convert("RGB")
            if im.size != self.size:
                im = im.resize(self.size, Image.BICUBIC)
            out.append(np.asarray(im, dtype=np.float64).ravel() / 255.0)
        return np.array(out)

    def features(self, images: list[Image.Image]) -> np.ndarray:
        return (self._flat(images) - self.mean) @ self.axes.T


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = stats_from_features(a), stats_from_features(b)
    return frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)


def real_floor(pool: np.ndarray, pool_labels: np.ndarray, reference: np.ndarray, labels: np.ndarray, draws: int = 5,
               seed: int = 0) -> float:
    """Mean Fréchet distance between `reference` and `draws` random sets of pool features with the
    same count per label as `labels` (the generated set's genre mix); the pool must not hold the reference."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        picked = []
        for label in np.unique(labels):
            options = np.flatnonzero(pool_labels == label)
            count = int((labels == label).sum())
            if len(options) < count:
                raise ValueError(f"the real pool has {len(options)} images of label {label}, the set needs {count}")
            picked += rng.choice(options, count, replace=False).tolist()
        values.append(frechet(pool[picked], reference))
    return float(np.mean(values))
