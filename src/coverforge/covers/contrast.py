"""WCAG 2.x contrast between a text colour and the pixels behind it.

Relative luminance and contrast ratio follow WCAG 2.x (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance);
4.5:1 is the level AA minimum for normal text. Art behind a line is not one colour, so the
background is taken as the worst 5% of its pixels: the brightest for light text, the darkest for
dark text. A few stray pixels do not fail a line, a bright stripe across it does.
"""

from __future__ import annotations

import numpy as np

from coverforge.covers.sizes import Box

MIN_CONTRAST = 4.5
WORST_PERCENT = 5.0


def relative_luminance(rgb: np.ndarray | tuple[int, int, int]) -> np.ndarray:
    """WCAG relative luminance (0 black .. 1 white) of 0..255 sRGB values, shape (..., 3) -> (...)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(lum_a: float | np.ndarray, lum_b: float | np.ndarray) -> float | np.ndarray:
    """(L_lighter + 0.05) / (L_darker + 0.05), from 1 (none) to 21 (black on white)."""
    hi, lo = np.maximum(lum_a, lum_b), np.minimum(lum_a, lum_b)
    return (hi + 0.05) / (lo + 0.05)


def worst_background(background: np.ndarray, text_rgb: tuple[int, int, int], percent: float = WORST_PERCENT) -> float:
    """Luminance of the worst `percent`% of background pixels (..., 3) for this text colour."""
    lum = relative_luminance(background.reshape(-1, 3))
    text_lum = float(relative_luminance(text_rgb))
    # Text lighter than most of the background is hurt by its brightest pixels, darker text by its darkest.
    lighter = text_lum > float(np.median(lum))
    return float(np.percentile(lum, 100.0 - percent if lighter else percent))


def line_contrast(background: np.ndarray, box: Box, text_rgb: tuple[int, int, int], percent: float = WORST_PERCENT) -> float:
    """Contrast of `text_rgb` against the worst pixels of `background` (H, W, 3) inside `box`."""
    x0, y0, x1, y1 = box
    patch = background[max(y0, 0) : max(y1, y0 + 1), max(x0, 0) : max(x1, x0 + 1)]
    if patch.size == 0:
        raise ValueError(f"box {box} is outside the image")
    return float(contrast_ratio(relative_luminance(text_rgb), worst_background(patch, text_rgb, percent)))
