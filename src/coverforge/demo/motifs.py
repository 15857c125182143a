"""Is a cover's motif there? A template detector for the synthetic catalogue's motifs.

The catalogue records every motif it draws (demo/art.py: which, and where). For a held-out book
whose real cover has, say, a moon, the question about the generated cover is whether a moon is
drawn where covers of that genre have one. The detector renders the motif's own shape (the
painter's disc, heart, band or frame) at every place and size the painter can put it, and asks
how much of the image around that place the shape's mask explains beyond a smooth gradient
(partial R^2 of the mask in a least-squares fit of the pixels on [1, x, y, mask]), with the sign
the motif has (a moon brighter than its sky, a heart darker than its pink). A crisp shape scores
near 1, a soft blob of the right colour much lower, a flat cover 0.

The threshold is calibrated on real training covers (their own motifs as positives; the same
covers blurred, and covers of other genres, as negatives) and every check is reported on the
held-out real covers, so a reader sees what the detector finds on real covers before trusting
what it finds on generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from coverforge.demo.art import heart

SUPERSAMPLE = 4
BLUR_SIGMA = 1.0
"""Pixels (at the evaluation size) of the Gaussian blur that turns a real cover into a negative:
a motif softened into a blob in the right place and colour does not count as drawn."""
COLOUR_POWER = 4
"""The colour agreement (cosine) counts to this power: a pale moon's contrast is within ~35 degrees
of a planet's, and must not pass for one."""
MIN_TRUE_POSITIVE = 0.9
"""The threshold keeps at least this share of the real training covers' motifs."""


@dataclass(frozen=True)
class MotifSearch:
    """Where and how big the painter draws a motif (fractions of width / height), and its contrast sign."""

    shape: str
    cx: tuple[float, float]
    cy: tuple[float, float]
    r: tuple[float, float]
    sign: int
    """+1: the motif is lighter than around it; -1: darker."""
    slope: tuple[float, float] = (0.0, 0.0)


# The painters' ranges (demo/art.py), widened by about a pixel at 32x48; test_demo_motifs checks
# that every motif the catalogue records lies inside its range.
SEARCH: dict[str, MotifSearch] = {
    "moon": MotifSearch("disc", (0.28, 0.72), (0.28, 0.44), (0.11, 0.22), +1),
    "planet": MotifSearch("disc", (0.28, 0.72), (0.31, 0.52), (0.11, 0.2), +1),
    "flower": MotifSearch("disc", (0.28, 0.72), (0.38, 0.62), (0.25, 0.37), -1),
    "heart": MotifSearch("heart", (0.28, 0.72), (0.31, 0.6), (0.21, 0.31), -1),
    "slash": MotifSearch("band", (0.5, 0.5), (0.2, 0.8), (0.055, 0.155), +1, slope=(0.2, 0.63)),
    "frame": MotifSearch("frame", (0.5, 0.5), (0.5, 0.5), (0.045, 0.085), -1),
}
GENRE_MOTIFS = ("moon", "planet", "heart", "flower", "slash", "frame")
"""Each genre's defining motif, always drawn on its covers (Romance: a heart or a flower)."""


def book_motif(motifs: list[dict]) -> dict | None:
    """The motif a book's real cover is checked for: the first detectable one it has."""
    for name in GENRE_MOTIFS:
        for m in motifs:
            if m["name"] == name:
                return m
    return None


def render_mask(shape: str, size: tuple[int, int], cx: float, cy: float, r: float, slope: float = 0.0) -> np.ndarray:
    """The shape's coverage (0..1) of each pixel of a (width, height) image, drawn as the painter draws it."""
    w, h = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    x, y, rr = cx * w, cy * h, r * w
    if shape == "disc":
        draw.ellipse((x - rr, y - rr, x + rr, y + rr), fill=255)
    elif shape == "heart":
        heart(draw, x, y, rr, 255)
    elif shape == "band":
        dy = slope * h  # slope is in fractions: height fraction per width fraction
        draw.polygon([(0, y - dy / 2 - rr), (w, y + dy / 2 - rr), (w, y + dy / 2 + rr), (0, y - dy / 2 + rr)], fill=255)
    elif shape == "frame":
        draw.rectangle((rr, rr, w - rr, h - rr), outline=255, width=max(int(0.018 * w), 1))
        draw.rectangle((rr * 1.6, rr * 1.6, w - rr * 1.6, h - rr * 1.6), outline=255, width=max(int(0.006 * w), 1))
    else:
        raise ValueError(f"unknown motif shape {shape!r}")
    return np.asarray(canvas.resize(size, Image.BOX), dtype=np.float64) / 255.0


@dataclass
class _Bank:
    """One motif's placements at one image size, as full-image vectors (zero outside each window),
    so that scoring an image is a few matrix products."""

    residual: np.ndarray  # (K, P): the mask minus its least-squares fit on [1, x, y] in the window
    basis: np.ndarray  # (K * 3, P): an orthonormal basis of [1, x, y] in each window
    window: np.ndarray  # (K, P): 1 inside the window


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    return np.array([lo]) if hi - lo < 1e-9 else np.linspace(lo, hi, max(2, int(round((hi - lo) / step)) + 1))


@lru_cache(maxsize=8)
def placements(name: str, size: tuple[int, int]) -> _Bank:
    """Every placement the search tries for one motif at one image size (about a pixel apart)."""
    s = SEARCH[name]
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    xs, ys = (xx / w).ravel(), (yy / h).ravel()
    slopes = [0.0] if s.shape != "band" else [sign * v for sign in (-1, 1) for v in _grid(*s.slope, 0.1)]
    step = 1.5 / w if s.shape == "band" else 1.0 / w  # bands span the cover: a coarser grid finds them
    residual, basis, windows = [], [], []
    for cx in _grid(*s.cx, step):
        for cy in _grid(*s.cy, step * w / h):
            for r in _grid(*s.r, step):
                for slope in slopes:
                    mask = render_mask(s.shape, size, cx, cy, r, slope).ravel()
                    if s.shape in ("disc", "heart"):  # the shape and a ring about as wide as its radius
                        window = (np.abs(xs - cx) <= 2.0 * r) & (np.abs(ys - cy) <= 2.0 * r * w / h)
                    elif s.shape == "frame":  # the border, without the panel or medallion inside
                        window = (np.minimum(xs, 1 - xs) <= 3.0 * r) | (np.minimum(ys, 1 - ys) <= 3.0 * r * w / h)
                    else:
                        window = np.ones_like(mask, dtype=bool)
                    design = np.stack([np.ones_like(xs), xs, ys], axis=1) * window[:, None]
                    q = np.linalg.qr(design)[0]  # zero rows outside the window
                    m = mask * window
                    residual.append(m - q @ (q.T @ m))
                    basis.append(q.T)
                    windows.append(window)
    k = len(residual)
    return _Bank(np.array(residual, np.float32), np.array(basis, np.float32).reshape(k * 3, -1), np.array(windows, np.float32))


LUMINANCE = np.array([0.299, 0.587, 0.114])


class MotifDetector:
    """Scores and a calibrated threshold per motif, at one image size."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.thresholds: dict[str, float] = {}
        self.colours: dict[str, np.ndarray] = {}
        """Per motif, the unit RGB contrast (motif minus surroundings) of real covers' motifs."""

    def _pixels(self, image: Image.Image) -> np.ndarray:
        im = image.convert("RGB")
        if im.size != self.size:
            im = im.resize(self.size, Image.BICUBIC)
        return np.asarray(im, dtype=np.float32).reshape(-1, 3) / 255.0

    def _fit(self, image: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per placement: partial R^2 of the mask (0 where its contrast has the wrong sign), and the
        mask's fitted RGB contrast."""
        bank = placements(name, self.size)
        y = self._pixels(image)  # (P, 3)
        k = bank.residual.shape[0]
        # Residual sum of squares on [1, x, y] in each window, and the part of it the mask explains.
        rss0 = bank.window @ (y**2).sum(1) - ((bank.basis @ y) ** 2).reshape(k, -1).sum(1)
        along = bank.residual @ y  # (K, 3)
        contrast = along / np.maximum((bank.residual**2).sum(1), 1e-12)[:, None]
        r2 = np.where(rss0 > 1e-5, (along * contrast).sum(1) / np.maximum(rss0, 1e-12), 0.0)
        return np.where(contrast @ LUMINANCE * SEARCH[name].sign > 0, r2, 0.0), contrast

    def score(self, image: Image.Image, name: str) -> float:
        """Best partial R^2 over every placement, times how close the contrast's colour is to the
        real motifs' (cosine, 0 if opposite): a gold moon is not a cyan planet."""
        r2, contrast = self._fit(image, name)
        if name in self.colours:
            unit = contrast / np.maximum(np.linalg.norm(contrast, axis=1, keepdims=True), 1e-12)
            r2 = r2 * np.clip(unit @ self.colours[name], 0.0, 1.0) ** COLOUR_POWER
        return float(r2.max())

    def present(self, image: Image.Image, name: str) -> bool:
        return self.score(image, name) >= self.thresholds[name]

    def calibrate(self, images: list[Image.Image], motifs: list[str | None]) -> dict[str, dict]:
        """Colours and thresholds from real covers: per motif, the threshold that best separates the
        covers that have it from covers of other genres, keeping at least MIN_TRUE_POSITIVE of the
        former. Returns the rates at that threshold on these covers."""
        report = {}
        for name in SEARCH:
            own = [i for i, m in enumerate(motifs) if m == name]
            if not own:
                continue
            colours = []
            for i in own:
                r2, contrast = self._fit(images[i], name)
                colours.append(contrast[r2.argmax()] / max(float(np.linalg.norm(contrast[r2.argmax()])), 1e-12))
            mean = np.mean(colours, axis=0)
            self.colours[name] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            # Covers of the other genres (a few of each) are the negatives.
            others = [i for i, m in enumerate(motifs) if m != name and not _same_genre(m, name)][:: max(1, len(motifs) // 60)]
            pos = np.array([self.score(images[i], name) for i in own])
            neg = np.array([self.score(images[i], name) for i in others])
            self.thresholds[name] = _best_threshold(pos, neg)
            report[name] = {"threshold": self.thresholds[name], "real": float((pos >= self.thresholds[name]).mean()),
                            "other_genres": float((neg >= self.thresholds[name]).mean()), "n": len(own), "n_other": len(others)}
        return report


def _same_genre(a: str | None, b: str) -> bool:
    """Heart and flower are Romance's alternatives: neither is a negative for the other."""
    return {a, b} == {"heart", "flower"}


def _rss(design: np.ndarray, y: np.ndarray) -> float:
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(((y - design @ coef) ** 2).sum())


def _best_threshold(pos: np.ndarray, neg: np.ndarray) -> float:
    """The threshold maximising true minus false positive rate, among those keeping MIN_TRUE_POSITIVE."""
    keep = float(np.quantile(pos, 1.0 - MIN_TRUE_POSITIVE))
    options = [t for t in np.unique(np.concatenate([pos, neg])) if t <= keep] or [keep]
    return float(max(options, key=lambda t: (pos >= t).mean() - (neg >= t).mean() if len(neg) else t))


def blur(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The cover at the evaluation size, softened: the motif's place and colour kept, its edges gone."""
    im = image.convert("RGB")
    if im.size != size:
        im = im.resize(size, Image.BICUBIC)
    return im.filter(ImageFilter.GaussianBlur(BLUR_SIGMA))
