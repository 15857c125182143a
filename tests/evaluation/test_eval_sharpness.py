"""High-frequency energy: grain raises the ratio to the real images, blur lowers it."""

import numpy as np
from PIL import Image, ImageFilter

from coverforge.evaluation.sharpness import energy_ratio, high_frequency_energy


def _images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.zeros((48, 32, 3), np.uint8)
        a[:, :] = rng.integers(40, 200, 3)
        x, y, r = rng.integers(8, 24), rng.integers(10, 38), rng.integers(4, 8)
        yy, xx = np.mgrid[:48, :32]
        a[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = rng.integers(0, 255, 3)
        out.append(Image.fromarray(a))
    return out


def test_ratio_is_one_for_the_same_images_and_moves_with_grain_and_blur():
    real = _images()
    assert energy_ratio(real, real, (32, 48)) == 1.0
    rng = np.random.default_rng(1)
    grainy = [Image.fromarray(np.clip(np.asarray(im, float) + rng.normal(0, 10, (48, 32, 3)), 0, 255).astype(np.uint8)) for im in real]
    soft = [im.filter(ImageFilter.GaussianBlur(1.5)) for im in real]
    assert energy_ratio(grainy, real, (32, 48)) > 2.0
    assert energy_ratio(soft, real, (32, 48)) < 0.7


def test_flat_image_has_no_high_frequency_energy_and_size_is_applied():
    assert high_frequency_energy(Image.new("RGB", (64, 96), (120, 30, 200))) == 0.0
    big = _images(1)[0].resize((64, 96), Image.NEAREST)
    assert abs(high_frequency_energy(big, (32, 48)) - high_frequency_energy(big.resize((32, 48), Image.BICUBIC))) < 1e-9
