"""Procedural cover art with a visual language per genre.

The demo trains a small diffusion model at 32-48 px and then asks a classifier which genre each
generated cover shows, so each genre's language is built from what survives that downscale: a
palette family, one or two large motifs and a composition, varied per book (hue jitter, motif
positions, counts and sizes, gradients, texture). The bands at the top and bottom stay quiet, as on
real covers, where the title and author are typeset later.
"""

from __future__ import annotations

import colorsys
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from coverforge.errors import CoverforgeError

SUPERSAMPLE = 2  # shapes are drawn at twice the size and downsampled, for smooth edges
Colour = tuple[int, int, int]


def hsv(h: float, s: float, v: float) -> Colour:
    """Hue in degrees, saturation and value in 0..1, to 0..255 RGB."""
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


Motifs = list[dict] | None
"""Where a painter lists the motifs it drew (name, shape and geometry in fractions of the cover's
width and height), for the demo's motif figure (demo/motifs.py); None: not recorded."""

Glow = tuple[float, float, float, Colour, float]  # centre x, centre y, radius, colour, strength
BACKDROP_STEP = 8  # backdrops are smooth: computed on a coarse grid and upsampled, for speed


def _backdrop(w: int, h: int, top: Colour, bottom: Colour, rng: np.random.Generator, glow: Glow | None = None) -> Image.Image:
    """A vertical gradient, slightly tilted and bent so no two are the same, with an optional halo."""
    gh, gw = max(h // BACKDROP_STEP, 2), max(w // BACKDROP_STEP, 2)
    y = np.linspace(0.0, 1.0, gh)[:, None]
    x = np.linspace(-0.5, 0.5, gw)[None, :]
    t = np.clip(y ** rng.uniform(0.7, 1.4) + x * rng.uniform(-0.25, 0.25), 0.0, 1.0)[..., None]
    canvas = (1 - t) * np.array(top, float) + t * np.array(bottom, float)  # (gh, gw, 3)
    if glow is not None:  # a moon's light, a romantic bloom
        cx, cy, radius, colour, strength = glow
        yy, xx = np.mgrid[:gh, :gw] * BACKDROP_STEP
        a = strength * np.exp(-((np.hypot(xx - cx, yy - cy) / radius) ** 2))[..., None]
        canvas = canvas * (1 - a) + np.array(colour, float) * a
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)


def _disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill, outline=None, width: int = 0) -> None:
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)


def _ridge(rng: np.random.Generator, w: int, base: float, amp: float, n: int) -> list[tuple[float, float]]:
    """A jagged skyline from left to right: mountain or hill silhouettes."""
    xs = np.linspace(-0.05 * w, 1.05 * w, n)
    ys = base - rng.uniform(0.2, 1.0, n) * amp
    ys[1::2] = base - rng.uniform(0.0, 0.35, len(ys[1::2])) * amp  # valleys between peaks
    return list(zip(xs.tolist(), ys.tolist()))


def _stars(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, n: int, y_max: float, colour: Colour) -> None:
    for x, y, r in zip(rng.uniform(0, w, n), rng.uniform(0, y_max, n), rng.uniform(0.6, 2.2, n) * SUPERSAMPLE):
        _disc(draw, x, y, r, colour)


def paint_fantasy(rng: np.random.Generator, w: int, h: int, motifs: Motifs = None) -> Image.Image:
    """Night gradient in violet, a big golden moon, layered mountain silhouettes."""
    hue = 268 + rng.uniform(-14, 14)
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.42) * h, rng.uniform(0.13, 0.21) * w
    moon = hsv(rng.uniform(38, 52), rng.uniform(0.55, 0.75), 0.97)
    top, bottom = hsv(hue - 10, 0.8, 0.22), hsv(hue + 18, 0.55, rng.uniform(0.5, 0.7))
    img = _backdrop(w, h, top, bottom, rng, (cx, cy, r * 2.2, moon, 0.45))
    draw = ImageDraw.Draw(img)
    _stars(draw, rng, w, h, int(rng.integers(15, 50)), 0.6 * h, hsv(50, 0.2, 1.0))
    _disc(draw, cx, cy, r, moon)
    _record(motifs, "moon", "disc", w, h, cx=cx, cy=cy, r=r)
    _disc(draw, cx + r * rng.uniform(-0.4, 0.4), cy + r * rng.uniform(-0.3, 0.3), r * 0.25, hsv(42, 0.5, 0.85))
    layers = int(rng.integers(2, 4))
    for i in range(layers):
        base = h * (0.66 + 0.07 * i + rng.uniform(-0.03, 0.03))
        colour = hsv(hue + 10 - 8 * i, 0.6, 0.32 - 0.11 * i)
        ridge = _ridge(rng, w, base, h * rng.uniform(0.12, 0.22), int(rng.integers(5, 10)))
        draw.polygon(ridge + [(w * 1.1, h * 1.1), (-w * 0.1, h * 1.1)], fill=colour)
    if rng.random() < 0.5:  # a castle tower on the skyline
        tx, tw = rng.uniform(0.2, 0.8) * w, rng.uniform(0.04, 0.07) * w
        ty = h * rng.uniform(0.5, 0.58)
        draw.rectangle((tx - tw, ty, tx + tw, h), fill=hsv(hue, 0.6, 0.08))
        draw.polygon([(tx - tw * 1.4, ty), (tx + tw * 1.4, ty), (tx, ty - tw * 2.5)], fill=hsv(hue, 0.6, 0.08))
        _record(motifs, "tower", "tower", w, h, cx=tx, cy=ty, r=tw)
    return img


def paint_science_fiction(rng: np.random.Generator, w: int, h: int, motifs: Motifs = None) -> Image.Image:
    """Black-to-cyan space, dense stars, a glowing planet horizon and a big ringed planet."""
    hue = 188 + rng.uniform(-12, 12)
    img = _backdrop(w, h, hsv(hue + 25, 0.7, 0.05), hsv(hue, 0.85, rng.uniform(0.3, 0.45)), rng)
    draw = ImageDraw.Draw(img)
    _stars(draw, rng, w, h, int(rng.integers(70, 180)), h, hsv(hue, 0.15, 1.0))
    horizon = h * rng.uniform(0.74, 0.84)
    big_r = w * rng.uniform(0.9, 1.4)
    hx = w * rng.uniform(0.2, 0.8)
    _disc(draw, hx, horizon + big_r, big_r + 3 * SUPERSAMPLE, hsv(hue - 10, 0.5, 1.0))  # atmosphere rim
    _disc(draw, hx, horizon + big_r, big_r, hsv(hue + 10, 0.8, 0.16))
    _record(motifs, "horizon", "disc", w, h, cx=hx, cy=horizon + big_r, r=big_r + 3 * SUPERSAMPLE)
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ldraw = ImageDraw.Draw(layer)
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.33, 0.5) * h, rng.uniform(0.12, 0.19) * w
    ring = (*hsv(rng.uniform(25, 40), 0.55, 1.0), 255)
    box = (cx - 2.0 * r, cy - 0.45 * r, cx + 2.0 * r, cy + 0.45 * r)
    ldraw.arc(box, 180, 360, fill=ring, width=int(r * 0.14))
    _disc(ldraw, cx, cy, r, (*hsv(hue - 5, 0.55, 0.85), 255))
    _disc(ldraw, cx + 0.25 * r, cy + 0.25 * r, 0.8 * r, (*hsv(hue + 5, 0.7, 0.6), 255))  # shaded side
    ldraw.arc(box, 0, 180, fill=ring, width=int(r * 0.14))
    layer = layer.rotate(rng.uniform(-30, 30), resample=Image.BICUBIC, center=(cx, cy))
    img.paste(layer, (0, 0), layer)
    _record(motifs, "planet", "disc", w, h, cx=cx, cy=cy, r=r)
    return img


def heart(draw: ImageDraw.ImageDraw, cx: float, cy: float, s: float, fill: Colour) -> None:
    """A heart of half-width s: two lobes and a point."""
    lobe = 0.52 * s
    _disc(draw, cx - 0.48 * s, cy - 0.15 * s, lobe, fill)
    _disc(draw, cx + 0.48 * s, cy - 0.15 * s, lobe, fill)
    draw.polygon([(cx - 0.98 * s, cy), (cx + 0.98 * s, cy), (cx, cy + 1.05 * s)], fill=fill)
    draw.rectangle((cx - 0.5 * s, cy - 0.2 * s, cx + 0.5 * s, cy + 0.1 * s), fill=fill)


def paint_romance(rng: np.random.Generator, w: int, h: int, motifs: Motifs = None) -> Image.Image:
    """Warm pink-to-rose gradient with a soft bloom, large red hearts or a big flower, bokeh."""
    hue = 345 + rng.uniform(-10, 10)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.4, 0.6) * h
    top, bottom = hsv(hue - 5, 0.3, 1.0), hsv(hue + 8, rng.uniform(0.55, 0.7), 0.92)
    img = _backdrop(w, h, top, bottom, rng, (cx, cy, w * 0.5, hsv(30, 0.25, 1.0), 0.6))
    draw = ImageDraw.Draw(img, "RGBA")
    for x, y, r in zip(rng.uniform(0, w, 14), rng.uniform(0.1 * h, 0.9 * h, 14), rng.uniform(0.02, 0.06, 14) * w):
        _disc(draw, x, y, r, (*hsv(hue, 0.2, 1.0), 110))
    if rng.random() < 0.7:
        s = rng.uniform(0.22, 0.3) * w
        for _ in range(int(rng.integers(0, 4))):  # small companion hearts
            heart(draw, rng.uniform(0.15, 0.85) * w, rng.uniform(0.25, 0.75) * h, s * rng.uniform(0.2, 0.4), hsv(hue, 0.55, 0.95))
        heart(draw, cx, cy - 0.3 * s, s, hsv(hue + rng.uniform(-6, 6), 0.85, rng.uniform(0.78, 0.92)))
        _record(motifs, "heart", "heart", w, h, cx=cx, cy=cy - 0.3 * s, r=s)
    else:
        petals, pr = int(rng.integers(5, 9)), rng.uniform(0.13, 0.18) * w
        turn = rng.uniform(0, 2 * np.pi)
        for k in range(petals):
            a = turn + 2 * np.pi * k / petals
            px, py = cx + 1.0 * pr * np.cos(a), cy + 1.0 * pr * np.sin(a)
            _disc(draw, px, py, pr, hsv(hue + 5, 0.8, 0.85))
        _disc(draw, cx, cy, pr * 0.9, hsv(hue, 0.9, 0.65))
        _disc(draw, cx, cy, pr * 0.35, hsv(40, 0.6, 0.95))
        _record(motifs, "flower", "disc", w, h, cx=cx, cy=cy, r=2 * pr)  # the petals' outline, nearly a disc
    return img


def paint_thriller(rng: np.random.Generator, w: int, h: int, motifs: Motifs = None) -> Image.Image:
    """High-contrast black with diagonal red and yellow slashes and a lone silhouette."""
    img = _backdrop(w, h, hsv(0, 0.4, rng.uniform(0.04, 0.12)), hsv(0, 0.6, rng.uniform(0.1, 0.2)), rng)
    draw = ImageDraw.Draw(img)
    slope = rng.uniform(0.35, 0.9) * (1 if rng.random() < 0.5 else -1)
    n = int(rng.integers(2, 5))
    centres = np.sort(rng.uniform(0.25, 0.75, n)) * h
    for k, yc in enumerate(centres):
        thick = rng.uniform(0.04, 0.1) * h
        colour = hsv(rng.uniform(-4, 6), 0.95, 0.85) if k % 2 == 0 else hsv(rng.uniform(45, 55), 0.95, 0.97)
        dy = slope * w
        draw.polygon([(0, yc - dy / 2 - thick), (w, yc + dy / 2 - thick), (w, yc + dy / 2 + thick), (0, yc - dy / 2 + thick)], fill=colour)
        _record(motifs, "slash", "band", w, h, cx=w / 2, cy=yc, r=thick, slope=slope * w / h)
    if rng.random() < 0.6:  # a figure walking away
        fx, fy, fs = rng.uniform(0.3, 0.7) * w, h * rng.uniform(0.78, 0.86), rng.uniform(0.09, 0.13) * h
        dark = hsv(0, 0.5, 0.05)
        draw.polygon([(fx - 0.3 * fs, fy - 1.3 * fs), (fx + 0.3 * fs, fy - 1.3 * fs), (fx + 0.4 * fs, fy), (fx - 0.4 * fs, fy)], fill=dark)
        _disc(draw, fx, fy - 1.55 * fs, 0.22 * fs, dark)
        _record(motifs, "figure", "figure", w, h, cx=fx, cy=fy, r=fs)
    return img


def _tree(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float, length: float, angle: float, width: float, depth: int, colour: Colour) -> None:
    """A bare, crooked tree by recursive branching."""
    x2, y2 = x + length * np.cos(angle), y - length * np.sin(angle)
    draw.line((x, y, x2, y2), fill=colour, width=max(int(width), 1))
    if depth == 0:
        return
    for turn in (rng.uniform(0.25, 0.7), -rng.uniform(0.25, 0.7)):
        _tree(draw, rng, x2, y2, length * rng.uniform(0.55, 0.8), angle + turn, width * 0.65, depth - 1, colour)


def paint_horror(rng: np.random.Generator, w: int, h: int, motifs: Motifs = None) -> Image.Image:
    """Dark green to black, a pale sickly moon, blood drips from the top and bare trees."""
    hue = 100 + rng.uniform(-12, 12)
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.42) * h, rng.uniform(0.12, 0.19) * w
    pale = hsv(rng.uniform(62, 78), rng.uniform(0.3, 0.45), 0.85)
    top, bottom = hsv(hue, 0.55, rng.uniform(0.2, 0.3)), hsv(hue + 10, 0.6, 0.04)
    img = _backdrop(w, h, top, bottom, rng, (cx, cy, r * 2.5, hsv(hue - 20, 0.4, 0.5), 0.5))
    draw = ImageDraw.Draw(img)
    _disc(draw, cx, cy, r, pale)
    _record(motifs, "moon", "disc", w, h, cx=cx, cy=cy, r=r)
    blood = hsv(rng.uniform(350, 362), 0.85, rng.uniform(0.4, 0.55))
    draw.rectangle((0, 0, w, h * 0.025), fill=blood)
    for x in rng.uniform(0, w, int(rng.integers(6, 14))):
        dw, dl = rng.uniform(0.012, 0.03) * w, rng.uniform(0.05, 0.22) * h
        draw.rectangle((x - dw, 0, x + dw, dl), fill=blood)
        _disc(draw, x, dl, dw * 1.3, blood)
    ground = h * rng.uniform(0.78, 0.85)
    dark = hsv(hue, 0.5, 0.03)
    draw.polygon(_ridge(rng, w, ground, h * 0.05, 7) + [(w * 1.1, h * 1.1), (-w * 0.1, h * 1.1)], fill=dark)
    for _ in range(int(rng.integers(1, 4))):
        x = rng.uniform(0.1, 0.9) * w
        _tree(draw, rng, x, ground + 0.02 * h, rng.uniform(0.12, 0.2) * h, np.pi / 2 + rng.uniform(-0.2, 0.2), 0.035 * w, 5, dark)
    return img


def paint_history(rng: np.random.Generator, w: int, h: int, motifs: Motifs = None) -> Image.Image:
    """Cream parchment, a brown double frame, horizontal rules and a sepia panel or medallion."""
    hue = 38 + rng.uniform(-6, 6)
    img = _backdrop(w, h, hsv(hue, rng.uniform(0.2, 0.3), 0.95), hsv(hue - 6, rng.uniform(0.3, 0.42), 0.86), rng)
    draw = ImageDraw.Draw(img)
    brown = hsv(rng.uniform(18, 30), rng.uniform(0.6, 0.75), rng.uniform(0.32, 0.45))
    m = rng.uniform(0.05, 0.08) * w
    draw.rectangle((m, m, w - m, h - m), outline=brown, width=int(0.018 * w))
    draw.rectangle((m * 1.6, m * 1.6, w - m * 1.6, h - m * 1.6), outline=brown, width=max(int(0.006 * w), 1))
    _record(motifs, "frame", "frame", w, h, cx=w / 2, cy=h / 2, r=m)
    for y in (0.2, 0.215, 0.8, 0.815)[: 2 * int(rng.integers(1, 3))]:
        draw.line((m * 2.5, y * h, w - m * 2.5, y * h), fill=brown, width=int(0.008 * w))
    cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h * rng.uniform(0.47, 0.53)
    if rng.random() < 0.6:  # an old painting in a panel
        pw, ph = rng.uniform(0.25, 0.34) * w, rng.uniform(0.18, 0.24) * h
        panel = _backdrop(int(2 * pw), int(2 * ph), hsv(hue - 8, 0.55, 0.55), hsv(hue - 15, 0.75, 0.28), rng)
        img.paste(panel, (int(cx - pw), int(cy - ph)))
        draw.rectangle((cx - pw, cy - ph, cx + pw, cy + ph), outline=brown, width=int(0.02 * w))
        _record(motifs, "panel", "box", w, h, cx=cx, cy=cy, r=pw, ry=ph)
    else:  # a medallion or seal
        r = rng.uniform(0.2, 0.27) * w
        _disc(draw, cx, cy, r, hsv(hue - 12, 0.7, 0.4))
        _disc(draw, cx, cy, r * 0.78, hsv(hue, 0.3, 0.88), outline=brown, width=int(0.012 * w))
        _disc(draw, cx, cy, r * 0.3, hsv(rng.uniform(350, 365), 0.7, 0.5))
        _record(motifs, "medallion", "disc", w, h, cx=cx, cy=cy, r=r)
    return img


def _record(motifs: Motifs, name: str, shape: str, w: int, h: int, cx: float, cy: float, r: float, **extra: float) -> None:
    """Note one drawn motif: its centre in fractions of width and height, its size r (radius,
    half-width, half-thickness or margin) in fractions of the width (ry: of the height)."""
    if motifs is not None:
        geometry = {"cx": cx / w, "cy": cy / h, "r": r / w, **{k: (v / h if k == "ry" else v) for k, v in extra.items()}}
        motifs.append({"name": name, "shape": shape, **{k: round(float(v), 5) for k, v in geometry.items()}})


PAINTERS: dict[str, Callable[..., Image.Image]] = {
    "Fantasy": paint_fantasy,
    "Science Fiction": paint_science_fiction,
    "Romance": paint_romance,
    "Thriller": paint_thriller,
    "Horror": paint_horror,
    "History": paint_history,
}


def paint_cover(genre: str, rng: np.random.Generator, size: tuple[int, int], motifs: Motifs = None) -> Image.Image:
    """One cover of `genre` at `size` (width, height): art, then film grain and a blotchy texture.
    A `motifs` list receives the motifs drawn (see `_record`); the image is the same either way."""
    if genre not in PAINTERS:
        raise CoverforgeError(f"no cover painter for genre {genre!r}; known genres: {', '.join(PAINTERS)}")
    w, h = size
    img = PAINTERS[genre](rng, w * SUPERSAMPLE, h * SUPERSAMPLE, motifs).convert("RGB").resize((w, h), Image.LANCZOS)
    texture = Image.fromarray(rng.normal(0, 1, (6, 4)).astype(np.float32)).resize((w, h), Image.BICUBIC)
    pixels = np.asarray(img, dtype=np.float32)
    pixels = pixels * (1 + 0.06 * np.asarray(texture)[..., None]) + rng.normal(0, 4.0, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
