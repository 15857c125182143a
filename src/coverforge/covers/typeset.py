"""Place fitted lines in a region, make them legible over the art, and draw them.

Legibility is measured, not assumed: for each candidate text colour (light, dark) the scrim
(gradient, band or soft patch in a tint of the art) is strengthened step by step until every
line's WCAG contrast against the worst 5% of the composited pixels under it reaches the target;
the colour needing the lighter scrim wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from coverforge.covers.contrast import MIN_CONTRAST, contrast_ratio, line_contrast, relative_luminance, worst_background
from coverforge.covers.sizes import Box
from coverforge.covers.text_fit import FittedText

LIGHT = (250, 248, 242)
DARK = (22, 20, 24)
# A hair above 4.5 so that rounding in a viewer's colour pipeline cannot tip a line below AA.
TARGET_CONTRAST = MIN_CONTRAST + 0.1
SCRIM_STEPS = np.round(np.arange(0.0, 1.0001, 0.05), 2)
BAND_MIN_ALPHA = 0.6
SEARCH_SAMPLES = 8192  # pixels per line looked at while searching for the scrim strength  # below this a band reads as a smudge, not a band


@dataclass(frozen=True)
class TextLine:
    """One drawn line of text."""

    role: str
    """'title', 'subtitle', 'author', 'spine' or 'back'."""
    text: str
    origin: tuple[int, int]
    """Left baseline point the line is drawn from (Pillow anchor 'ls')."""
    box: Box
    """Ink box on the canvas."""
    font: ImageFont.FreeTypeFont
    colour: tuple[int, int, int] = LIGHT
    contrast: float = 0.0
    """Measured WCAG contrast against the composited background under `box`."""

    @property
    def font_size(self) -> int:
        return int(self.font.size)


def stack(parts: list[tuple[str, FittedText]], region: Box, valign: str, gaps: list[int], align: str = "center") -> list[TextLine]:
    """Lines of each fitted part stacked top to bottom in `region`; `gaps[i]` px follows part i."""
    total = sum(f.height for _, f in parts) + sum(gaps[: len(parts) - 1])
    x0, y0, x1, y1 = region
    top = {"top": y0, "middle": y0 + (y1 - y0 - total) // 2, "bottom": y1 - total}[valign]
    lines: list[TextLine] = []
    for i, (role, fitted) in enumerate(parts):
        first_baseline = top - fitted.ink[0][1]
        for j, (text, (ix0, iy0, ix1, iy1)) in enumerate(zip(fitted.lines, fitted.ink)):
            if align == "left":
                x = x0 - ix0
            else:
                x = (x0 + x1) // 2 - (ix0 + ix1) // 2
            y = first_baseline + j * fitted.pitch
            lines.append(TextLine(role, text, (x, y), (x + ix0, y + iy0, x + ix1, y + iy1), fitted.font))
        top += fitted.height + (gaps[i] if i < len(gaps) else 0)
    return lines


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def scrim_mask(shape: tuple[int, int], block: Box, treatment: str, pad: int) -> np.ndarray:
    """Scrim coverage (H, W) in 0..1: 1 under the padded text block, fading out per treatment."""
    h, w = shape
    x0, y0, x1, y1 = block
    rows = np.arange(h, dtype=np.float32)
    fade = max(2 * pad, h // 8)
    if treatment == "fade_top":
        column = np.clip(1.0 - (rows - (y1 + pad)) / fade, 0.0, 1.0)
        return np.repeat(column[:, None], w, axis=1)
    if treatment == "fade_bottom":
        column = np.clip(1.0 - ((y0 - pad) - rows) / fade, 0.0, 1.0)
        return np.repeat(column[:, None], w, axis=1)
    if treatment == "band":
        column = ((rows >= y0 - pad) & (rows < y1 + pad)).astype(np.float64)
        return np.repeat(column[:, None], w, axis=1)
    if treatment == "soft":
        patch = Image.new("L", (w, h), 0)
        ImageDraw.Draw(patch).rounded_rectangle((x0 - 2 * pad, y0 - pad, x1 + 2 * pad, y1 + pad), radius=pad, fill=255)
        soft = np.asarray(patch.filter(ImageFilter.GaussianBlur(pad)), dtype=np.float64) / 255.0
        inner = np.zeros((h, w))
        inner[max(y0 - pad // 2, 0) : y1 + pad // 2, max(x0 - pad, 0) : x1 + pad] = 1.0
        return np.maximum(soft, inner)
    raise ValueError(f"unknown scrim treatment {treatment!r}")


def _tint(art: np.ndarray, block: Box, colour: tuple[int, int, int]) -> np.ndarray:
    """A scrim colour of the art's own hue, dark behind light text and pale behind dark text."""
    x0, y0, x1, y1 = block
    mean = art[max(y0, 0) : y1, max(x0, 0) : x1].reshape(-1, 3).mean(axis=0)
    return mean * 0.18 if colour == LIGHT else 255.0 - (255.0 - mean) * 0.12


def _composite(art: np.ndarray, mask: np.ndarray, tint: np.ndarray, alpha: float) -> np.ndarray:
    cover = (alpha * mask)[..., None]
    return art * (1.0 - cover) + tint * cover


def make_legible(art: np.ndarray, lines: list[TextLine], treatment: str, pad: int, target: float = TARGET_CONTRAST) -> tuple[np.ndarray, list[TextLine]]:
    """The art (H, W, 3 float) with the lightest scrim that gives every line `target` contrast, and
    the lines with their colour and measured contrast set."""
    block = union([line.box for line in lines])
    mask = scrim_mask(art.shape[:2], block, treatment, pad)
    floor = BAND_MIN_ALPHA if treatment == "band" else 0.0
    # Only the pixels under the lines decide; search on a sample of them, measure all at the end.
    samples = []
    for line in lines:
        x0, y0, x1, y1 = line.box
        step = max(1, int(np.ceil(np.sqrt((x1 - x0) * (y1 - y0) / SEARCH_SAMPLES))))
        window = np.s_[max(y0, 0) : y1 : step, max(x0, 0) : x1 : step]
        samples.append((art[window].reshape(-1, 3), mask[window].reshape(-1)))
    best = None
    for colour in (LIGHT, DARK):
        tint = _tint(art, block, colour)
        text_lum = relative_luminance(colour)
        for alpha in SCRIM_STEPS[SCRIM_STEPS >= floor]:
            worst = min(contrast_ratio(text_lum, worst_background(_composite(px, m, tint, alpha), colour)) for px, m in samples)
            if worst >= target:
                key = (alpha, -worst)
                if best is None or key < best[0]:
                    best = (key, colour, tint, alpha)
                break
    if best is None:  # cannot happen with the tints above (>= 11:1 at full scrim), kept as a guard
        raise RuntimeError("no scrim reached the contrast target")
    _, colour, tint, alpha = best
    out = art
    if alpha > 0:
        rows = np.flatnonzero(mask.max(axis=1) > 0)
        band = np.s_[rows[0] : rows[-1] + 1]
        out = art.copy()
        out[band] = _composite(art[band], mask[band], tint, alpha)
    measured = [TextLine(l.role, l.text, l.origin, l.box, l.font, colour, line_contrast(out, l.box, colour)) for l in lines]
    return out, measured


def draw_lines(image: Image.Image, lines: list[TextLine]) -> None:
    draw = ImageDraw.Draw(image)
    for line in lines:
        draw.text(line.origin, line.text, font=line.font, fill=line.colour, anchor="ls")
