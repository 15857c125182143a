"""Colour health of generated images: grayscale rate and mean colourfulness, saturation, brightness.

Uses the project's one grayscale test (`coverforge.data.colour`), the same threshold data
preparation filters with, because the seeds' SDXL drifted to grayscale covers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from coverforge.data.colour import GRAYSCALE_THRESHOLD, colourfulness

COLOUR_METHOD = f"hasler-suesstrunk<{GRAYSCALE_THRESHOLD:g}"


def image_colour(image: Image.Image) -> dict[str, float]:
    """Colourfulness M, grayscale flag (1/0), and mean HSV saturation and value on 0..1."""
    rgb = image.convert("RGB")
    m = colourfulness(rgb)
    hsv = np.asarray(rgb.convert("HSV"), dtype=np.float64) / 255.0
    return {
        "colourfulness": m,
        "grayscale": float(m < GRAYSCALE_THRESHOLD),
        "saturation": float(hsv[..., 1].mean()),
        "brightness": float(hsv[..., 2].mean()),
    }


def summarise_colour(per_image: Iterable[dict[str, float]]) -> dict[str, float]:
    """Means over images; `grayscale_rate` is the fraction flagged grayscale."""
    rows = list(per_image)
    if not rows:
        return {}
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return {
        "grayscale_rate": mean["grayscale"],
        "colourfulness": mean["colourfulness"],
        "saturation": mean["saturation"],
        "brightness": mean["brightness"],
    }
