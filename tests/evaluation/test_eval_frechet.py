import numpy as np
import pytest
import torch
from torchmetrics.image.fid import _compute_fid

from coverforge.evaluation.frechet import FeatureStats, StreamingStats, fid, frechet_distance, stats_from_features


def eig_frechet(mu1, s1, mu2, s2) -> float:
    """Independent route: Tr((S1 S2)^1/2) = sum of sqrt of the (real, non-negative) eigenvalues of S1 S2."""
    eig = np.linalg.eigvals(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())


def random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16)) * 3 + 1
    s = stats_from_features(x)
    assert abs(fid(s, s)) < 1e-6


def test_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.1, 4, 8), rng.uniform(0.1, 4, 8)
    expected = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_full_covariances_match_eigenvalue_route_and_torchmetrics():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    s1, s2 = random_cov(rng, 12), random_cov(rng, 12)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(eig_frechet(mu1, s1, mu2, s2), rel=1e-9)
    tm = _compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))).item()
    assert ours == pytest.approx(tm, rel=1e-9)


def test_two_sampled_gaussian_sets():
    rng = np.random.default_rng(3)
    a = rng.multivariate_normal(np.zeros(6), np.diag([1, 2, 3, 1, 1, 1]), size=4000)
    b = rng.multivariate_normal(np.full(6, 0.5), np.diag([2, 1, 1, 3, 1, 1]), size=4000)
    sa, sb = stats_from_features(a), stats_from_features(b)
    value = fid(sa, sb)
    assert value == pytest.approx(eig_frechet(sa.mu, sa.sigma, sb.mu, sb.sigma), rel=1e-9)
    # and near the population closed form (sampling error only)
    v1, v2 = np.array([1, 2, 3, 1, 1, 1.0]), np.array([2, 1, 1, 3, 1, 1.0])
    population = 6 * 0.25 + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    assert value == pytest.approx(population, rel=0.05)


def test_singular_covariances_stay_finite():
    x = np.random.default_rng(4).normal(size=(10, 32))  # n < d: rank-deficient covariance
    y = np.random.default_rng(5).normal(size=(10, 32))
    value = fid(stats_from_features(x), stats_from_features(y))
    assert np.isfinite(value) and value > 0


def test_streaming_stats_equal_batch_computation():
    x = torch.randn(1037, 20, dtype=torch.float32) * 5 + 100  # large offset: a naive sum-of-squares loses digits
    stream = StreamingStats("tiny")
    for chunk in torch.split(x, 64):
        stream.update(chunk)
    s, full = stream.stats(), stats_from_features(x, "tiny")
    assert s.n == full.n == 1037
    np.testing.assert_allclose(s.mu, full.mu, rtol=1e-12)
    np.testing.assert_allclose(s.sigma, full.sigma, rtol=1e-9, atol=1e-10)
    assert abs(fid(s, full)) < 1e-6


def test_fid_refuses_mixed_extractors_and_bad_shapes():
    x = np.random.default_rng(6).normal(size=(20, 4))
    with pytest.raises(ValueError, match="extractors"):
        fid(stats_from_features(x, "a:1:x"), stats_from_features(x, "b:1:y"))
    with pytest.raises(ValueError):
        FeatureStats(mu=np.zeros(3), sigma=np.eye(4), n=5)
