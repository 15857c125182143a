"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel (Binkowski et al. 2018).

Same estimator as torchmetrics' `KernelInceptionDistance` (mean and population std over random
subsets), but seeded with its own generator so the same call gives the same numbers.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> torch.Tensor:
    """k(x, y) = (gamma <x, y> + coef)^degree with gamma = 1 / D by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> float:
    """Unbiased MMD^2 of two equal-size samples: diagonal terms of k_xx and k_yy left out."""
    m = x.shape[0]
    k_xx = polynomial_kernel(x, x, degree, gamma, coef)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def _as_tensor(features: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(features).detach().cpu().to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(t.shape)}")
    return t


def kid(
    features_a: torch.Tensor | np.ndarray,
    features_b: torch.Tensor | np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of unbiased MMD^2 over `subsets` random subsets of `subset_size` from each set.

    subset_size is capped at the smaller set (logged), since FID/KID evaluations of a validation
    split often have fewer than 1000 images.
    """
    a, b = _as_tensor(features_a), _as_tensor(features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} vs {b.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors per set, got {a.shape[0]} and {b.shape[0]}")
    if m < subset_size:
        log.info("KID: subset size capped at %d (sets have %d and %d)", m, a.shape[0], b.shape[0])
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        ia = torch.randperm(a.shape[0], generator=generator)[:m]
        ib = torch.randperm(b.shape[0], generator=generator)[:m]
        scores.append(mmd2_unbiased(a[ia], b[ib]))
    values = np.asarray(scores)
    return float(values.mean()), float(values.std())  # population std, as torchmetrics


def kid_subset_size(n_a: int, n_b: int, subset_size: int = 1000) -> int:
    """The subset size `kid` actually uses, for reporting next to the figure."""
    return min(subset_size, n_a, n_b)
