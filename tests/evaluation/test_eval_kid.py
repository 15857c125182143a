import pytest
import torch
from torchmetrics.image.kid import poly_mmd

from coverforge.evaluation.kid import kid, mmd2_unbiased, polynomial_kernel


def test_mmd_matches_torchmetrics_poly_mmd():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 10, generator=g, dtype=torch.float64), torch.randn(64, 10, generator=g, dtype=torch.float64) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(poly_mmd(x, y).item(), rel=1e-12)


def test_kid_equals_torchmetrics_estimator_on_the_same_subsets():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(300, 8, generator=g, dtype=torch.float64), torch.randn(200, 8, generator=g, dtype=torch.float64) * 1.2
    mean, std = kid(a, b, subsets=7, subset_size=50, seed=3)
    # torchmetrics' compute() loop with the same permutations (its own uses the global RNG)
    perm_gen = torch.Generator().manual_seed(3)
    scores = []
    for _ in range(7):
        ia, ib = torch.randperm(300, generator=perm_gen)[:50], torch.randperm(200, generator=perm_gen)[:50]
        scores.append(poly_mmd(a[ia], b[ib]))
    scores = torch.stack(scores)
    assert mean == pytest.approx(scores.mean().item(), rel=1e-12)
    assert std == pytest.approx(scores.std(unbiased=False).item(), rel=1e-12)


def test_kid_unbiased_on_same_distribution():
    g = torch.Generator().manual_seed(2)
    means, biased = [], []
    for trial in range(5):
        a, b = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
        means.append(kid(a, b, subsets=10, subset_size=100, seed=trial)[0])
        # the V-statistic (diagonals kept) on 100-sample subsets, for scale
        x, y = a[:100].double(), b[:100].double()
        biased.append(float(polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean() - 2 * polynomial_kernel(x, y).mean()))
    avg = sum(means) / len(means)
    shifted = kid(torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g) + 0.5, subsets=10, subset_size=100)[0]
    assert min(biased) > 0.1 and shifted > 0.1
    assert abs(avg) < 0.05 * min(biased) and abs(avg) < 0.02 * shifted


def test_kid_is_seeded_and_caps_subset_size():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(120, 8, generator=g), torch.randn(90, 8, generator=g)
    assert kid(a, b, subsets=10, subset_size=1000, seed=5) == kid(a, b, subsets=10, subset_size=1000, seed=5)
    assert kid(a, b, subsets=10, subset_size=50, seed=5) != kid(a, b, subsets=10, subset_size=50, seed=6)
    with pytest.raises(ValueError):
        kid(a[:1], b)
