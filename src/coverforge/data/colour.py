"""Colour health of an image: the one grayscale test used by data preparation and evaluation.

The seeds' SDXL model drifted to grayscale covers; keeping grayscale covers out of the training
set and counting them among generated images both use `colourfulness` below.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Hasler & Suesstrunk (2003) rate M < 15 "not colourful"; near-neutral covers (sepia, duotone) sit
# just above. 8 keeps those and drops true grayscale scans and JPEG-tinted grays.
GRAYSCALE_THRESHOLD = 8.0


def colourfulness(image: Image.Image | np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M on 0..255 RGB; 0 for a pure gray image."""
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    if rgb.max() <= 1.0 and rgb.dtype != np.uint8:
        rgb = rgb * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.hypot(rg.std(), yb.std())
    mean = np.hypot(rg.mean(), yb.mean())
    return float(std + 0.3 * mean)


def is_grayscale(image: Image.Image | np.ndarray, threshold: float = GRAYSCALE_THRESHOLD) -> bool:
    return colourfulness(image) < threshold
