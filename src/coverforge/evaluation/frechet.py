"""Fréchet distance between Gaussians fitted to features (FID, Heusel et al. 2017).

Statistics are float64 throughout; `StreamingStats` merges batch moments (Chan et al. 1979) so a
feature set of any size is summarised without holding it, and matches the one-shot computation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy import linalg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set, with what produced it."""

    mu: np.ndarray
    """(D,) float64 mean."""
    sigma: np.ndarray
    """(D, D) float64 covariance (unbiased, divides by n - 1)."""
    n: int
    """Number of images the statistics summarise; FID is biased at small n, so it travels along."""
    extractor: str = ""
    """Identity of the feature extractor (name:version:weights-hash); empty when unknown."""

    def __post_init__(self) -> None:
        if self.mu.ndim != 1 or self.sigma.shape != (self.mu.shape[0],) * 2:
            raise ValueError(f"mu {self.mu.shape} and sigma {self.sigma.shape} do not describe one D-dim Gaussian")
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got n={self.n}")


def _as_float64(features: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().to(torch.float64).numpy()
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    return features


def stats_from_features(features: torch.Tensor | np.ndarray, extractor: str = "") -> FeatureStats:
    """Mean and unbiased covariance of (N, D) features, in float64."""
    x = _as_float64(features)
    return FeatureStats(mu=x.mean(axis=0), sigma=np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]), n=x.shape[0], extractor=extractor)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), as in the reference FID code (pytorch-fid)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product (fewer images than feature dims): nudge both diagonals, as pytorch-fid does.
        log.warning("FID: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm(S1 S2)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
    """FID between two feature summaries; refuses to compare features of different extractors."""
    if stats_a.extractor and stats_b.extractor and stats_a.extractor != stats_b.extractor:
        raise ValueError(f"FID across extractors is meaningless: {stats_a.extractor!r} vs {stats_b.extractor!r}")
    return frechet_distance(stats_a.mu, stats_a.sigma, stats_b.mu, stats_b.sigma)


class StreamingStats:
    """Running mean and scatter matrix in float64, merged batch by batch (Chan et al. 1979)."""

    def __init__(self, extractor: str = "") -> None:
        self.extractor = extractor
        self.n = 0
        self._mean: np.ndarray | None = None
        self._scatter: np.ndarray | None = None  # sum of outer products of deviations from the mean

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        x = _as_float64(features)
        nb = x.shape[0]
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        centred = x - mean_b
        scatter_b = centred.T @ centred  # (D, D)
        if self._mean is None:
            self.n, self._mean, self._scatter = nb, mean_b, scatter_b
            return
        if mean_b.shape != self._mean.shape:
            raise ValueError(f"feature width changed from {self._mean.shape[0]} to {mean_b.shape[0]}")
        total = self.n + nb
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (nb / total)
        self._scatter = self._scatter + scatter_b + np.outer(delta, delta) * (self.n * nb / total)
        self.n = total

    def stats(self) -> FeatureStats:
        if self._mean is None:
            raise ValueError("no features were added")
        return FeatureStats(mu=self._mean.copy(), sigma=self._scatter / (self.n - 1), n=self.n, extractor=self.extractor)
