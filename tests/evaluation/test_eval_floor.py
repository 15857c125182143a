"""Fréchet floors: two real sets of the same distribution sit near the floor; a shifted set far above it."""

import numpy as np
import pytest
from PIL import Image

from coverforge.evaluation.floor import PixelPCA, frechet, real_floor


def test_floor_matches_real_sets_and_a_shifted_set_is_far_above():
    rng = np.random.default_rng(0)
    pool, reference = rng.normal(size=(400, 5)), rng.normal(size=(60, 5))
    pool_labels, labels = np.arange(400) % 2, np.arange(60) % 2
    floor = real_floor(pool, pool_labels, reference, labels, draws=5)
    same = frechet(rng.normal(size=(60, 5)), reference)
    shifted = frechet(rng.normal(size=(60, 5)) + 1.0, reference)
    assert 0.5 * floor < same < 2.0 * floor
    assert shifted > 3 * floor


def test_floor_keeps_the_genre_mix_and_refuses_a_small_pool():
    rng = np.random.default_rng(0)
    pool = np.concatenate([rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 5.0])
    pool_labels = np.array([0] * 30 + [1] * 30)
    reference = np.concatenate([rng.normal(size=(10, 3)), rng.normal(size=(10, 3)) + 5.0])
    labels = np.array([0] * 10 + [1] * 10)
    assert real_floor(pool, pool_labels, reference, labels) < 3.0  # a mix of only label 0 would be ~25
    with pytest.raises(ValueError, match="label 1"):
        real_floor(pool[:35], pool_labels[:35], reference, labels)


def test_pixel_pca_projects_to_its_components():
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (12, 8, 3), dtype=np.uint8)) for _ in range(30)]
    pca = PixelPCA(images, (8, 12), components=5)
    feats = pca.features(images)
    assert feats.shape == (30, 5)
    assert np.allclose(feats.mean(0), 0.0, atol=1e-9)  # centred on the fit set
    assert np.all(np.diff(feats.var(0)) <= 1e-9)  # ordered by variance
