"""High-frequency energy of images: grain left by sampling, or detail lost to blur.

Mean absolute Laplacian of the grayscale image (0..255) at one given size: the real covers and
the generated ones are measured at the same size, and the figure is their ratio (1 = as sharp and
as clean as the real covers; above 1, grain or noise; below 1, soft).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def high_frequency_energy(image: Image.Image, size: tuple[int, int] | None = None) -> float:
    """Mean |Laplacian| of the image's luminance, resized to `size` (width, height) first if given."""
    im = image.convert("RGB")
    if size is not None and im.size != tuple(size):
        im = im.resize(tuple(size), Image.BICUBIC)
    im = im.convert("L")
    return float(np.abs(ndimage.laplace(np.asarray(im, dtype=np.float64))).mean())


def energy_ratio(images: list[Image.Image], reference: list[Image.Image], size: tuple[int, int]) -> float:
    """Mean high-frequency energy of `images` over that of `reference`, both at `size`."""
    ref = np.mean([high_frequency_energy(im, size) for im in reference])
    return float(np.mean([high_frequency_energy(im, size) for im in images]) / ref)
