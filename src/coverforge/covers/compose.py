"""Typeset a book's title, subtitle and author onto generated art at an ebook or print size."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from coverforge.covers.contrast import line_contrast
from coverforge.covers.crop import Crop, fit_art
from coverforge.covers.fonts import get_font
from coverforge.covers.layouts import Layout, get_layout
from coverforge.covers.proof import draw_proof
from coverforge.covers.sizes import Box, CoverSize, parse_size
from coverforge.covers.text_fit import FittedText, fit_text
from coverforge.covers.typeset import TARGET_CONTRAST, TextLine, draw_lines, make_legible, stack
from coverforge.errors import CoverforgeError

# Share of a group's height each role may take before fitting (normalised over the roles present).
ROLE_WEIGHT = {"title": 1.0, "subtitle": 0.3, "author": 0.26}
# Subtitle and author never outgrow the title they sit under.
ROLE_CAP = {"title": 1.0, "subtitle": 0.55, "author": 0.7}
GAP = 0.03  # between roles of a group, as a fraction of the safe-area height
SCRIM_PAD = 0.018  # scrim margin around text, as a fraction of the canvas height


@dataclass
class CoverResult:
    image: Image.Image
    """RGB, exactly size.width_px x size.height_px."""
    size: CoverSize
    boxes: list[TextLine]
    """Every drawn line with its ink box, font, colour and measured contrast."""
    contrast: float
    """Lowest measured WCAG contrast over all lines."""
    crop: Crop
    layout: str
    art: Image.Image = field(repr=False)
    """The source art, kept for the proof."""
    font: str = ""
    """The bundled font chosen for title and author ('source-sans-bold'); empty: the layout's faces."""

    def proof(self) -> Image.Image:
        """The cover with trim, bleed and safe-area guides and text boxes, beside the art crop."""
        return draw_proof(self.image, self.size, self.boxes, self.crop, self.art)

    def save(self, path: str | Path) -> Path:
        return save_cover(self.image, self.size, path)


def save_cover(image: Image.Image, size: CoverSize, path: str | Path) -> Path:
    """Write PNG/JPEG (with the print dpi recorded) or PDF (page exactly the physical size)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"):
        raise CoverforgeError(f"output {path}: use a .pdf, .png, .jpg, .tif or .webp file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        image.save(path, "PDF", dpi=size.pdf_dpi)
    elif suffix in (".jpg", ".jpeg"):
        image.save(path, quality=95, dpi=(size.dpi, size.dpi))
    else:
        image.save(path, dpi=(size.dpi, size.dpi))
    return path


def choose_layout(layout: str | None, genre: str | None, font: str | None) -> Layout:
    """The named (or genre's) layout, with title and author in `font` (a bundled font's name) when one is given."""
    chosen = get_layout(layout, genre)
    if font:
        face = get_font(font)
        chosen = chosen.with_face(face.family, face.bold)
    return chosen


def typefaces(lines: list[TextLine]) -> dict[str, str]:
    """The face each role was actually drawn in ('Source Serif Pro Bold'), read from the fonts on the lines."""
    return {line.role: " ".join(line.font.getname()) for line in lines}


def _region(safe: Box, fractions: tuple[float, float, float, float]) -> Box:
    x0, y0, x1, y1 = safe
    w, h = x1 - x0, y1 - y0
    l, t, r, b = fractions
    return (round(x0 + l * w), round(y0 + t * h), round(x0 + r * w), round(y0 + b * h))


def _fit_group(roles: list[str], texts: dict[str, str], layout: Layout, region: Box, safe_h: int, gap: int, title_size: int | None) -> list[tuple[str, FittedText]]:
    """Fit each role of a group in its share of the region; `title_size` (once known) caps the rest."""
    width, height = region[2] - region[0], region[3] - region[1] - gap * (len(roles) - 1)
    total = sum(ROLE_WEIGHT[r] for r in roles)
    parts: list[tuple[str, FittedText]] = []
    for role in roles:
        style = layout.style(role)
        max_size = round(style.max_size * safe_h)
        if title_size is not None:
            max_size = min(max_size, max(round(ROLE_CAP[role] * title_size), round(style.min_size * safe_h)))
        budget = round(height * ROLE_WEIGHT[role] / total)
        fitted = fit_text(texts[role], style.family, style.bold, width, budget, max_size, round(style.min_size * safe_h), style.max_lines, style.leading)
        if role == "title":
            title_size = fitted.size
        parts.append((role, fitted))
    return parts


def typeset(canvas: Image.Image, size: CoverSize, layout: Layout, texts: dict[str, str], scrim_floor: float = 0.0) -> tuple[Image.Image, list[TextLine]]:
    """Draw the texts on `canvas` (already the art at `size`) in `layout`; returns the image and lines.
    `scrim_floor` (0..1) is the least scrim strength behind every group (raised when OCR could not read a cover)."""
    safe_h = size.safe[3] - size.safe[1]
    gap = round(GAP * safe_h)
    pad = round(SCRIM_PAD * size.height_px)
    background = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    groups: list[tuple[str, list[TextLine]]] = []
    title_size = None
    # The title's group first, so that its size caps subtitle and author wherever they sit.
    for group in sorted(layout.groups, key=lambda g: "title" not in g.roles):
        roles = [r for r in group.roles if texts.get(r, "").strip()]
        if not roles:
            continue
        region = _region(size.safe, group.region)
        parts = _fit_group(roles, texts, layout, region, safe_h, gap, title_size)
        title_size = next((f.size for r, f in parts if r == "title"), title_size)
        lines = stack(parts, region, group.valign, [gap] * len(roles))
        background, lines = make_legible(background, lines, group.treatment, pad, min_alpha=scrim_floor)
        groups.append((group.treatment, lines))
    # A later group's scrim may reach under an earlier group's lines: recheck and strengthen.
    for _ in range(2):
        final = np.asarray(Image.fromarray(np.clip(background.round(), 0, 255).astype(np.uint8)), dtype=np.float32)
        weak = [i for i, (_, lines) in enumerate(groups) if min(line_contrast(final, l.box, l.colour) for l in lines) < TARGET_CONTRAST - 0.1]
        if not weak:
            break
        for i in weak:
            treatment, weak_lines = groups[i]
            background, weak_lines = make_legible(background, weak_lines, treatment, pad, min_alpha=scrim_floor)
            groups[i] = (treatment, weak_lines)
    image = Image.fromarray(np.clip(background.round(), 0, 255).astype(np.uint8))
    final = np.asarray(image, dtype=np.float32)
    lines = [
        TextLine(l.role, l.text, l.origin, l.box, l.font, l.colour, line_contrast(final, l.box, l.colour))
        for _, group_lines in groups
        for l in group_lines
    ]
    draw_lines(image, lines)
    return image, lines


def make_cover(
    art: Image.Image,
    title: str,
    author: str,
    subtitle: str = "",
    size: CoverSize | str = "ebook",
    layout: str | None = None,
    genre: str | None = None,
    scrim_floor: float = 0.0,
    font: str | None = None,
) -> CoverResult:
    """A front cover: art centre-cropped and resized to `size`, with title, subtitle and author set
    in the named layout (or the genre's, or 'classic') at >= 4.5:1 measured contrast and little
    texture under the letters; `scrim_floor` forces at least that scrim strength (0..1); `font`
    (a name from `fonts.bundled_fonts`) sets title and author instead of the layout's faces."""
    if not title or not title.strip():
        raise CoverforgeError("cover title is empty: give the book's title")
    cover_size = parse_size(size) if isinstance(size, str) else size
    chosen = choose_layout(layout, genre, font)
    canvas, crop = fit_art(art, cover_size.size)
    texts = {"title": " ".join(title.split()), "subtitle": " ".join(subtitle.split()), "author": " ".join(author.split())}
    image, lines = typeset(canvas, cover_size, chosen, texts, scrim_floor)
    return CoverResult(image, cover_size, lines, min(l.contrast for l in lines), crop, chosen.name, art, get_font(font).name if font else "")
