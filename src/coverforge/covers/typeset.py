"""Place fitted lines in a region, make them legible over the art, and draw them.

Legibility is measured, not assumed: for each candidate text colour (light, dark) the scrim
(gradient, band or soft patch in a tint of the art) is strengthened step by step until, for every
line, (1) the WCAG contrast against the worst 5% of the composited pixels under it reaches the
target, and (2) the texture left under and around it (detail finer than the letters, within a
quiet zone of QUIET_ZONE font sizes) is small beside the lightness difference between text and
background; the colour needing the lighter scrim wins.
Contrast averaged over a box is not enough on busy art: on 8-px black-and-white noise a title at
4.8:1 did not read back through OCR at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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
BAND_MIN_ALPHA = 0.6  # below this a band reads as a smudge, not a band
SEARCH_SAMPLES = 8192  # pixels per line looked at while searching for the scrim strength
# Texture around a line (root-mean-square fine detail, lightness 0..1) may be at most this share
# of the text-to-background lightness difference. Measured at ebook size through OCR read-back
# ("The Salt Road" / "Mara Ellison" over 4-, 6- and 8-px black-and-white and 8-px colour noise
# blocks, all four layouts): at 0.10 letters were lost in three layouts on 8-px blocks; at 0.07
# and 0.05 every cover read back. The check in `covers.legibility` catches what this misses.
MAX_CLUTTER = 0.07
QUIET_ZONE = 0.4  # font sizes around a line whose texture counts too: OCR lost letters next to busy art
LUMA = np.array([0.2126, 0.7152, 0.0722]) / 255.0  # gamma-encoded lightness, 0..1


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
        ImageDraw.Draw(patch).rounded_rectangle((x0 - 2 * pad, y0 - 2 * pad, x1 + 2 * pad, y1 + 2 * pad), radius=pad, fill=255)
        soft = np.asarray(patch.filter(ImageFilter.GaussianBlur(pad / 2)), dtype=np.float64) / 255.0
        inner = np.zeros((h, w))
        inner[max(y0 - pad, 0) : y1 + pad, max(x0 - pad, 0) : x1 + pad] = 1.0  # full cover over the padded block
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


class _Probe(NamedTuple):
    """What decides one line's scrim, sampled once: pixels under its ink box (contrast), and the
    fine detail of the art around it (texture), each with the scrim coverage there."""

    pixels: np.ndarray  # (N, 3) art under the ink box
    cover: np.ndarray  # (N,) scrim mask there
    detail: np.ndarray  # (M,) lightness minus its blur, ink box grown by the quiet zone
    detail_cover: np.ndarray  # (M,) scrim mask there


def _sample(n: int, seed: int = 0) -> np.ndarray | slice:
    """Up to SEARCH_SAMPLES of n indices, drawn at random with a fixed seed: a regular stride
    locks onto periodic art (stripes) and sees only one phase of it."""
    return np.random.default_rng(seed).integers(0, n, SEARCH_SAMPLES) if n > SEARCH_SAMPLES else slice(None)


def _clip(box: Box, shape: tuple[int, ...]) -> Box:
    return (max(box[0], 0), max(box[1], 0), min(box[2], shape[1]), min(box[3], shape[0]))


def fine_detail(art: np.ndarray, box: Box, font_size: int) -> np.ndarray:
    """Lightness (0..1) in `box` minus its blur at half the font size: the detail fine enough to
    break up letter shapes, without the art's broad shading."""
    x0, y0, x1, y1 = _clip(box, art.shape)
    lightness = np.clip(art[y0:y1, x0:x1] @ LUMA, 0.0, 1.0)
    if lightness.size == 0:
        return lightness
    coded = Image.fromarray(np.round(lightness * 255).astype(np.uint8))
    smooth = np.asarray(coded.filter(ImageFilter.GaussianBlur(max(1.0, font_size / 2))), dtype=np.float64) / 255.0
    return lightness - smooth


def quiet_box(line: TextLine) -> Box:
    """The line's ink box grown by the quiet zone, where texture hurts reading too."""
    grow = round(QUIET_ZONE * line.font_size)
    x0, y0, x1, y1 = line.box
    return (x0 - grow, y0 - grow, x1 + grow, y1 + grow)


def _probe(art: np.ndarray, mask: np.ndarray, line: TextLine) -> _Probe:
    x0, y0, x1, y1 = _clip(line.box, art.shape)
    pixels, cover = art[y0:y1, x0:x1].reshape(-1, 3), mask[y0:y1, x0:x1].reshape(-1)
    keep = _sample(len(pixels))
    qx0, qy0, qx1, qy1 = _clip(quiet_box(line), art.shape)
    detail, detail_cover = fine_detail(art, (qx0, qy0, qx1, qy1), line.font_size).reshape(-1), mask[qy0:qy1, qx0:qx1].reshape(-1)
    near = _sample(len(detail), seed=1)
    return _Probe(pixels[keep], cover[keep], detail[near], detail_cover[near])


def _readable(probe: _Probe, colour: tuple[int, int, int], tint: np.ndarray, alpha: float, target: float) -> bool:
    """Both criteria of the module docstring for one line at scrim strength `alpha`."""
    composite = _composite(probe.pixels, probe.cover, tint, alpha)
    if contrast_ratio(relative_luminance(colour), worst_background(composite, colour)) < target:
        return False
    # The scrim scales the art's detail by (1 - alpha * coverage); the tint itself is flat.
    left = float(np.sqrt(np.mean((probe.detail * (1.0 - alpha * probe.detail_cover)) ** 2))) if probe.detail.size else 0.0
    return left <= MAX_CLUTTER * abs(float(np.asarray(colour) @ LUMA) - float(np.median(composite @ LUMA)))


def make_legible(art: np.ndarray, lines: list[TextLine], treatment: str, pad: int, target: float = TARGET_CONTRAST,
                 min_alpha: float = 0.0) -> tuple[np.ndarray, list[TextLine]]:
    """The art (H, W, 3 float) with the lightest scrim (at least `min_alpha`) under which every line
    reads (module docstring), and the lines with their colour and measured contrast set."""
    block = union([line.box for line in lines])
    # The scrim reaches past the quiet zone of the largest line, so full strength can calm it.
    pad = max(pad, round(QUIET_ZONE * max(line.font_size for line in lines)))
    mask = scrim_mask(art.shape[:2], block, treatment, pad)
    floor = max(BAND_MIN_ALPHA if treatment == "band" else 0.0, min_alpha)
    # Only the pixels under and around the lines decide; search on samples, measure all at the end.
    probes = [_probe(art, mask, line) for line in lines]
    best, strongest = None, None
    for colour in (LIGHT, DARK):
        tint = _tint(art, block, colour)
        for alpha in SCRIM_STEPS[SCRIM_STEPS >= floor - 1e-9]:
            readable = all(_readable(p, colour, tint, alpha, target) for p in probes)
            if not readable and alpha < 1.0:
                continue
            worst = min(contrast_ratio(relative_luminance(colour), worst_background(_composite(p.pixels, p.cover, tint, alpha), colour)) for p in probes)
            if alpha == 1.0 and (strongest is None or worst > strongest[0][1]):
                strongest = ((alpha, worst), colour, tint, alpha)
            if readable:
                key = (alpha, -worst)
                if best is None or key < best[0]:
                    best = (key, colour, tint, alpha)
                break
    # A line whose quiet zone runs past its scrim (a fade's edge, the canvas edge) can keep some
    # texture even at full strength; then the full scrim in the better colour is the most there is.
    _, colour, tint, alpha = best if best is not None else strongest
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
